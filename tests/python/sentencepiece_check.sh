#!/usr/bin/env bash
# lorafed's SentencePiece tokenizer against SentencePiece's own Python
# binding: check_sentencepiece_ids.py trains models on CORPUS_DIR with
# SentencePiece's trainer; lorafed_tokenizer_ids trains one with lorafed's
# and writes lorafed's ids of some strings with each; the binding must get
# the same ids and decoded text with the same models.
#
#   tests/python/sentencepiece_check.sh TOKENIZER_IDS CORPUS_DIR WORK_DIR
#
# Exits 77 (ctest: skipped) only when /usr/bin/python3 cannot import
# sentencepiece; `scripts/setup.sh test` installs it (python3-sentencepiece).
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 TOKENIZER_IDS CORPUS_DIR WORK_DIR" >&2
  exit 2
fi
tokenizer_ids=$1 corpus=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c 'import sentencepiece' 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 cannot import sentencepiece" \
    "(Debian: apt-get install python3-sentencepiece, or scripts/setup.sh test)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
/usr/bin/python3 "$here/check_sentencepiece_ids.py" train "$corpus" "$work"
"$tokenizer_ids" "$corpus" "$work"
/usr/bin/python3 "$here/check_sentencepiece_ids.py" check "$work"
