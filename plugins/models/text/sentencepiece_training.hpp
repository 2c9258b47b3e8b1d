#pragma once
// Training a SentencePiece BPE model as Llama's was made, for the bases
// lorafed pretrains itself (plugins/models/llama): lorafed's own trainer,
// whose files SentencePiece's Python binding reads and encodes as lorafed
// does (tests/python/check_sentencepiece_ids.py).

#include <cstdint>
#include <filesystem>

#include "sentencepiece_model.hpp"

namespace lorafed::text {

struct SentencePieceTrainingOptions {
  // The share of the corpus's characters that get pieces of their own; the
  // rarest others are written as bytes (byte fallback). SentencePiece's default.
  double character_coverage = 0.9995;
};

// A BPE model of vocab_size pieces learnt from UTF-8 text file (one sentence
// per line): <unk> 0, <s> 1, </s> 2, the 256 byte pieces, the corpus's
// characters (up to character_coverage) and the most frequent merges, each
// merge scored below the one before. Words are cut before each space and
// around each digit, so no piece spans two words or two digits; spaces are
// kept as written (identity normalization, dummy prefix, runs not
// collapsed). Deterministic: the same corpus gives the same model; ties go
// to the lexicographically smallest merge.
//
// A lorafed::ConfigError names the corpus when it cannot be read, is not
// UTF-8 (naming the line), has no text, or yields a number of pieces other
// than vocab_size (fewer than the characters and bytes need, or more than
// its words allow).
SentencePieceModel train_sentencepiece_model(const std::filesystem::path& corpus_text_file,
                                             std::int64_t vocab_size,
                                             const SentencePieceTrainingOptions& options = {});

// train_sentencepiece_model's model written to model_file (aside and
// renamed, so a reader never sees half of one); lorafed::Error when it
// cannot be written.
void train_sentencepiece(const std::filesystem::path& corpus_text_file, std::int64_t vocab_size,
                         const std::filesystem::path& model_file,
                         const SentencePieceTrainingOptions& options = {});

}  // namespace lorafed::text
