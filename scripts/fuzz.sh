#!/usr/bin/env bash
# Builds the libFuzzer target with Clang (cmake --preset fuzz) and fuzzes the
# checks a receiver makes on a message (tests/fuzz/envelope_fuzzer.cpp) for
# LORAFED_FUZZ_SECONDS (default 60), starting from a corpus of valid messages.
# A crash or sanitizer report fails the script and leaves the input in
# build/fuzz/artifacts/; fix the bug and add the input to tests/fuzz/regressions/,
# which every run replays first (and the unit tests replay under the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
corpus=build/fuzz/corpus
mkdir -p "$corpus" build/fuzz/artifacts
# The seeds come from the release build (the codec's encoder needs LibTorch's
# operators, which Clang cannot compile in C++20 mode).
cmake --build --preset release --target lorafed_fuzz_seeds
build/release/bin/lorafed_fuzz_seeds "$corpus"
# LibTorch is not built with ASan: its process-lifetime allocations are not leaks.
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build/fuzz/bin/lorafed_fuzz_envelope -max_total_time="${LORAFED_FUZZ_SECONDS:-60}" \
  -max_len=8192 -artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 "$corpus" tests/fuzz/regressions
