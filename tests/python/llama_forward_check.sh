#!/usr/bin/env bash
# The llama backend's forward pass against plain PyTorch: lorafed_llama_logits
# writes tiny checkpoints (grouped-query, tied and untied heads, biases,
# llama3 and linear rotary scaling) with lorafed's logits, and
# check_llama_forward.py recomputes them in float64 from the equations.
#
#   tests/python/llama_forward_check.sh LLAMA_LOGITS WORK_DIR
#
# Exits 77 (ctest: skipped) only when /usr/bin/python3 cannot import torch
# and numpy; `scripts/setup.sh test` installs them (python3-torch).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 LLAMA_LOGITS WORK_DIR" >&2
  exit 2
fi
llama_logits=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 cannot import torch and numpy" \
    "(Debian: apt-get install python3-torch, or scripts/setup.sh test)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
"$llama_logits" "$work"
/usr/bin/python3 "$here/check_llama_forward.py" "$work"
