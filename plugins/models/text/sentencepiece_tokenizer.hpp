#pragma once
// A SentencePiece BPE model (tokenizer.model, as Llama-2, TinyLlama and
// Mistral ship it) as a Tokenizer: SentencePiece's identity normalization,
// its merge-by-score BPE and byte fallback, written in lorafed and checked
// id for id against SentencePiece's own Python binding
// (tests/python/check_sentencepiece_ids.py).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentencepiece_model.hpp"
#include "string_map.hpp"
#include "tokenizer.hpp"

namespace lorafed::text {

class AddedTokenSplitter;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // FormatError naming the file when it is missing or not a model lorafed
  // reads (read_sentencepiece_model). BOS and EOS are the model's own
  // control pieces (none where it has no such piece).
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::filesystem::path& path);
  explicit SentencePieceTokenizer(SentencePieceModel model);
  ~SentencePieceTokenizer() override;

  // SentencePiece's encoding, with the model's control and unknown pieces
  // ("<s>", "</s>", "<unk>") written in the text recognised as themselves
  // (the text between them encoded on its own, as Hugging Face's Llama
  // tokenizer does).
  std::vector<std::int64_t> encode(std::string_view text) const override;
  // SentencePiece's decoding, except that control and unknown pieces decode
  // to their text ("</s>", "<unk>") and byte pieces to their bytes as they
  // are (SentencePiece writes U+FFFD for bytes that are no character).
  std::string decode(const std::vector<std::int64_t>& ids) const override;
  std::int64_t vocab_size() const override;
  std::optional<std::int64_t> token_id(std::string_view token) const override;

 private:
  std::string normalize(std::string_view text) const;
  std::size_t user_defined_length(std::string_view text) const;
  void encode_plain(std::string_view text, std::vector<std::int64_t>& ids) const;
  bool is_special(std::int64_t id) const;

  SentencePieceModel model_;
  StringMap<std::int64_t> ids_;            // every piece
  StringMap<std::int64_t> mergeable_;      // normal and user-defined pieces: what BPE may form
  std::vector<std::string> user_defined_;  // longest first
  std::int64_t unknown_id_ = 0;
  std::array<std::int64_t, 256> byte_ids_{};
  std::unique_ptr<AddedTokenSplitter> special_pieces_;
};

}  // namespace lorafed::text
