#!/usr/bin/env bash
# Sets up, builds and runs the default example federation (README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh lorafed_cli   # the executable and its plugins; tests and benchmarks are not needed
build/release/bin/lorafed simulate examples/quickstart.toml "$@"
