#!/usr/bin/env bash
# Configures and builds lorafed (release preset, 2 jobs) into build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release
