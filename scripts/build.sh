#!/usr/bin/env bash
# Configures and builds lorafed (release preset, 2 jobs) into build/release:
# everything, or only the targets named (scripts/quickstart.sh builds just
# the executable and its plugins).
#
#   scripts/build.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
if [ $# -gt 0 ]; then
  cmake --build --preset release --target "$@"
else
  cmake --build --preset release
fi
