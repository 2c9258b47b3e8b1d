#!/usr/bin/env bash
# Runs README's server and client commands exactly as written there (the
# lines of its "Running federations" section that start with
# `build/release/bin/lorafed server` or `... client`), from the repository
# root, and fails unless the server and every client exit 0. ctest runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t commands < <(grep -E '^build/release/bin/lorafed (server|client) ' README.md)
if [ "${#commands[@]}" -lt 2 ]; then
  echo "README has no server and client commands to run" >&2
  exit 1
fi
logs=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for i in "${!commands[@]}"; do
  echo "README: ${commands[$i]}"
  bash -c "${commands[$i]}" >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "failed: ${commands[$i]}" >&2
    cat "$logs/$i.log" >&2
    status=1
  fi
done
tail -n 1 "$logs/0.log"
exit $status
