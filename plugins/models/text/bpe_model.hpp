#pragma once
// The BPE model of a Hugging Face tokenizer.json ("model": {"type": "BPE"}):
// a vocabulary and ranked merges, applied to one pre-token at a time as the
// tokenizers crate does — the lowest-ranked merge anywhere in the word first
// (the leftmost among equal ranks), not left to right.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_fields.hpp"
#include "string_map.hpp"

namespace lorafed::text {

class BpeModel {
 public:
  // Reads the "model" object at `where`; FormatError for anything malformed or unsupported:
  // a merge naming a symbol the vocabulary lacks, a merged symbol missing from it, ids that
  // are not integers in range or shared by two tokens, dropout, a continuing-subword prefix or
  // end-of-word suffix.
  static BpeModel from_json(const JsonFile& file, const nlohmann::json& model,
                            const std::string& where);

  // Appends the ids of one pre-token (text already in the vocabulary's alphabet).
  void tokenize(std::string_view piece, std::vector<std::int64_t>& ids) const;

  std::optional<std::int64_t> id_of(std::string_view token) const;
  // The token with this id, or nullptr.
  const std::string* token_of(std::int64_t id) const;
  const std::unordered_map<std::int64_t, std::string>& tokens() const { return tokens_; }
  // -1 for an empty vocabulary.
  std::int64_t largest_id() const { return largest_id_; }

 private:
  struct Merge {
    std::int32_t rank;
    std::int64_t merged_id;
  };
  struct Symbol;

  BpeModel() = default;
  static std::uint64_t pair_key(std::int64_t left, std::int64_t right);
  // The word's characters as symbols, unknown ones replaced as the model says.
  std::vector<Symbol> initial_symbols(std::string_view piece) const;
  void merge_symbols(std::vector<Symbol>& symbols) const;

  StringMap<std::int64_t> ids_;
  std::unordered_map<std::int64_t, std::string> tokens_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::int64_t largest_id_ = -1;
  std::optional<std::int64_t> unknown_id_;
  bool fuse_unknown_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
};

}  // namespace lorafed::text
