#!/usr/bin/env bash
# The PEFT export loads where users take it: a short `lorafed simulate` of a
# tiny gpt federation (tiny-gpt-peft.toml), lorafed's own logits of the model
# the server evaluated and of the exported adapter (lorafed_peft_logits), and
# check_peft_export.py, which loads the adapter and the base it points at
# with plain torch and must get the same logits. Run from / so the adapter's
# base path must be absolute.
#
#   tests/python/peft_export_check.sh LORAFED PEFT_LOGITS WORK_DIR
#
# Exits 77 (ctest: skipped) only when /usr/bin/python3 cannot import torch
# and numpy; `scripts/setup.sh test` installs them (python3-torch).
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 LORAFED PEFT_LOGITS WORK_DIR" >&2
  exit 2
fi
lorafed=$1 peft_logits=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 cannot import torch and numpy" \
    "(Debian: apt-get install python3-torch, or scripts/setup.sh test)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
if ! LORAFED_CACHE_DIR="$work/cache" "$lorafed" simulate "$here/tiny-gpt-peft.toml" \
  --out "$work/run" >"$work/simulate.log" 2>&1; then
  cat "$work/simulate.log"
  exit 1
fi
# The base lorafed pretrained and used: the only file in this run's cache.
bases=("$work"/cache/gpt-base-*.safetensors)
if [ ${#bases[@]} -ne 1 ] || [ ! -f "${bases[0]}" ]; then
  echo "expected one cached base in $work/cache, found: ${bases[*]}"
  exit 1
fi
# The global change the server evaluated: the last round's checkpoint state.
states=("$work"/run/checkpoint/state-*.safetensors)
if [ ${#states[@]} -ne 1 ] || [ ! -f "${states[0]}" ]; then
  echo "expected one checkpoint state in $work/run/checkpoint, found: ${states[*]}"
  exit 1
fi
"$peft_logits" "${bases[0]}" "${states[0]}" "$work/run/peft/global" "$work/logits.safetensors"
cd /
/usr/bin/python3 "$here/check_peft_export.py" "$work/run/peft/global" "$work/logits.safetensors"
