#pragma once
// A Hugging Face tokenizer.json whose model is a byte-level BPE, as GPT-2,
// SmolLM2, Llama-3 and Qwen2 ship it: added tokens split out first, then the
// normalizer (none or NFC), the pre-tokenizer (ByteLevel, Split, Sequence),
// the BPE merges, and the ByteLevel decoder back to bytes.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "tokenizer.hpp"

namespace lorafed::text {

class JsonFile;

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // FormatError naming the file and the field for anything malformed or unsupported.
  static std::unique_ptr<ByteLevelBpeTokenizer> from_file(const std::filesystem::path& path);
  static std::unique_ptr<ByteLevelBpeTokenizer> from_json(const JsonFile& file);

  // Why a parsed tokenizer.json is not a byte-level BPE (its model is not
  // BPE, or no ByteLevel pre-tokenizer maps its text to bytes); nullopt when it is one.
  static std::optional<std::string> why_not_byte_level(const JsonFile& file);

  ~ByteLevelBpeTokenizer() override;

  std::vector<std::int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int64_t>& ids) const override;
  std::int64_t vocab_size() const override;
  std::optional<std::int64_t> token_id(std::string_view token) const override;

 private:
  struct Parts;
  explicit ByteLevelBpeTokenizer(std::unique_ptr<const Parts> parts);

  std::unique_ptr<const Parts> parts_;
};

}  // namespace lorafed::text
