#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (README's second command):
# unit, integration and lint tests on the release build, out-of-tree plugins
# built against an installed copy (scripts/test-install.sh), then the unit
# tests of code that parses untrusted input (frames, updates, checkpoints,
# configs, tokenizers, tensor files: tests/CMakeLists.txt) again under
# AddressSanitizer + UBSan (skip those with LORAFED_SKIP_ASAN=1), and a short
# libFuzzer run on the envelope decoder (scripts/fuzz.sh, LORAFED_FUZZ_SECONDS,
# default 60; skip with LORAFED_SKIP_FUZZ=1). Each stage prints its minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
stage_done() { echo "test.sh: $1 done at $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"; }
scripts/setup.sh test   # the quickstart's packages, Python's torch (tests/python), Open MPI
stage_done setup
# The mpi transport and its test must build here: no silent skip in CI.
cmake --preset release -DLORAFED_REQUIRE_MPI=ON >/dev/null
scripts/build.sh
stage_done build
# Unit tests run two at a time; integration tests are RUN_SERIAL.
ctest --preset release --timeout 600 -j2 "$@"
stage_done tests
scripts/test-install.sh build/release
stage_done install
if [ "${LORAFED_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan --target lorafed_unit_tests
  # LibTorch is not built with ASan; its process-lifetime allocations are not leaks.
  # One process for all of them: under ASan, loading LibTorch costs ~2 s a
  # process.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build/asan/tests/lorafed_unit_tests --use-colour no
  stage_done sanitizers
fi
if [ "${LORAFED_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh
  stage_done fuzz
fi
