#!/usr/bin/env bash
# The out-of-tree plugin check (part of scripts/test.sh): installs lorafed to
# a temporary prefix, builds examples/custom-strategy and freshly scaffolded
# `lorafed new strategy|model|transport` projects against that prefix alone,
# in copies outside the source tree, lists them with `lorafed plugins`, and
# runs a 2-round federation with each.
# Usage: scripts/test-install.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
work=$(mktemp -d /tmp/lorafed-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "== installing $build to $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
lorafed=$prefix/bin/lorafed
"$lorafed" --version
# The installed dataset maker runs from the prefix alone.
"$prefix/bin/lorafed-word-problems" --format gsm8k --per-task 2 --out "$work/problems.jsonl"
[ "$(wc -l <"$work/problems.jsonl")" -eq 14 ] || { echo "lorafed-word-problems: expected 14 lines"; exit 1; }

cp -r examples/custom-strategy "$work/custom-strategy"
rm -rf "$work/custom-strategy/build"
"$lorafed" new strategy demo_strategy "$work/demo_strategy"
"$lorafed" new model demo_model "$work/demo_model"
"$lorafed" new transport demo_transport "$work/demo_transport"

build_plugin() {
  cmake -S "$1" -B "$1/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$prefix" >"$1/configure.log" 2>&1 ||
    { cat "$1/configure.log"; return 1; }
  cmake --build "$1/build" >"$1/build.log" 2>&1 || { cat "$1/build.log"; return 1; }
}
echo "== building four plugins against the prefix"
pids=()
for project in custom-strategy demo_strategy demo_model demo_transport; do
  build_plugin "$work/$project" &
  pids+=($!)
  if [ ${#pids[@]} -eq 2 ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"

export LORAFED_PLUGIN_PATH="$work/custom-strategy/build/plugins:$work/demo_strategy/build/plugins:$work/demo_model/build/plugins:$work/demo_transport/build/plugins"
listing=$("$lorafed" plugins)
echo "$listing"
for expected in "trimmed_mean.*1.0.0" "demo_strategy.*0.1.0" "demo_model.*0.1.0" "demo_transport.*0.1.0" "fedhl"; do
  grep -Eq "$expected" <<<"$listing" || { echo "lorafed plugins does not list $expected"; exit 1; }
done

echo "== 2-round federations with each"
"$lorafed" simulate "$work/custom-strategy/trimmed-mean-fmnist.toml" --log-level warn \
  --set federation.rounds=2 --set federation.num_clients=4 --out "$work/runs/trimmed_mean"
for project in demo_strategy demo_model demo_transport; do
  (cd "$work/$project" && "$lorafed" simulate "$project.toml" --log-level warn --out "$work/runs/$project")
done
for run in trimmed_mean demo_strategy demo_model demo_transport; do
  grep -Eq '"rounds": ?2,' "$work/runs/$run/summary.json" ||
    { echo "no 2-round summary for $run"; exit 1; }
done
echo "== out-of-tree plugins: all built, listed and run"
