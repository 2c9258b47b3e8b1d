#!/usr/bin/python3
"""lorafed's SentencePiece tokenizer against SentencePiece's own Python
binding (Debian's python3-sentencepiece). Nothing of lorafed is used here.

    check_sentencepiece_ids.py train CORPUS_DIR WORK_DIR
        trains models with SentencePiece's own trainer on the corpus files,
        each into WORK_DIR/<name>/tokenizer.model
    check_sentencepiece_ids.py check WORK_DIR
        for every WORK_DIR/<name>/ids.json that lorafed_tokenizer_ids wrote,
        encodes its texts with the binding and that folder's model, and
        requires lorafed's ids (and decoded text, where the ids name no
        unknown piece) to be the binding's

Exits 1, showing the first differences, on any mismatch.
"""

import json
import os
import sys

import sentencepiece

# SentencePiece's own models, as the checkpoints lorafed reads were made
# (Llama-2's settings first), and variations of the normalizer lorafed
# must follow: collapsed spaces, no dummy prefix, user-defined pieces, and
# unknown characters without byte fallback.
MODELS = {
    "python-llama": dict(vocab_size=2000, byte_fallback=True, split_digits=True,
                         allow_whitespace_only_pieces=True, remove_extra_whitespaces=False),
    "python-collapsed": dict(vocab_size=1000, character_coverage=0.99,
                             user_defined_symbols=["<|user|>", "<|assistant|>"]),
    "python-no-prefix": dict(vocab_size=1500, byte_fallback=True, add_dummy_prefix=False,
                             remove_extra_whitespaces=False),
}


def corpus_text(corpus_dir):
    names = sorted(n for n in os.listdir(corpus_dir)
                   if os.path.isfile(os.path.join(corpus_dir, n))
                   and not os.path.islink(os.path.join(corpus_dir, n)))
    parts = []
    for name in names:
        with open(os.path.join(corpus_dir, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def train(corpus_dir, work):
    corpus = os.path.join(work, "python-corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(corpus_text(corpus_dir))
    for name, settings in MODELS.items():
        folder = os.path.join(work, name)
        os.makedirs(folder, exist_ok=True)
        sentencepiece.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(folder, "tokenizer"), model_type="bpe",
            normalization_rule_name="identity", num_threads=1, minloglevel=2, **settings)
        os.remove(os.path.join(folder, "tokenizer.vocab"))
    return 0


def check(work):
    folders = sorted(n for n in os.listdir(work)
                     if os.path.isfile(os.path.join(work, n, "ids.json")))
    if len(folders) < len(MODELS) + 1:
        print(f"ids.json in {folders} only: lorafed_tokenizer_ids did not encode every model")
        return 1
    failed = 0
    for name in folders:
        processor = sentencepiece.SentencePieceProcessor(
            model_file=os.path.join(work, name, "tokenizer.model"))
        with open(os.path.join(work, name, "ids.json"), encoding="utf-8") as f:
            cases = json.load(f)
        mismatches = 0
        for case in cases:
            text, ids = case["text"], case["ids"]
            expected = processor.encode(text)
            same = ids == expected
            if same and not any(processor.is_unknown(i) for i in expected):
                same = case["decoded"] == processor.decode(expected)
            if same:
                continue
            mismatches += 1
            if mismatches <= 5:
                print(f"{name}: text {text!r}:\n  lorafed ids {ids}\n  binding ids {expected}\n"
                      f"  lorafed decoded {case['decoded']!r}\n"
                      f"  binding decoded {processor.decode(expected)!r}")
        if not cases or mismatches:
            print(f"{name}: {mismatches} of {len(cases)} texts differ from SentencePiece's "
                  "Python binding")
            failed += 1
        else:
            print(f"{name}: {len(cases)} texts, lorafed's ids and decoded text equal the "
                  f"binding's (vocabulary of {processor.get_piece_size()})")
    return 1 if failed else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "train":
        return train(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        return check(sys.argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
