#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --preset release --timeout 600 "$@"
