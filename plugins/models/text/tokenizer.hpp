#pragma once
// lorafed's text tokenizers: what turns a language model's text into token
// ids and back, read from a model folder as Hugging Face saves it. No
// LibTorch here: the backends that use it put the ids into tensors.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorafed::text {

// encode, decode and the lookups keep no state: one tokenizer may serve
// several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer();

  // The ids of text (UTF-8; anything else is a lorafed::FormatError). Added
  // and special tokens written in the text ("<|endoftext|>", "</s>") are
  // recognised as themselves; no BOS or EOS is added.
  virtual std::vector<std::int64_t> encode(std::string_view text) const = 0;

  // The text of ids; added and special tokens decode to their content. The
  // bytes come back as the tokens carry them, so ids cut off inside a
  // character end in part of one. Ids that name no token (a model's padded
  // embedding rows) decode to nothing, as in Hugging Face's tokenizers.
  virtual std::string decode(const std::vector<std::int64_t>& ids) const = 0;

  // One more than the largest id.
  virtual std::int64_t vocab_size() const = 0;

  // The id of a token as the vocabulary writes it ("<s>", "Ġthe", "▁the").
  virtual std::optional<std::int64_t> token_id(std::string_view token) const = 0;

  // The ids sequences start / end with, where the model has them.
  std::optional<std::int64_t> bos_id() const { return bos_id_; }
  std::optional<std::int64_t> eos_id() const { return eos_id_; }
  // Throws lorafed::ConfigError for an id outside [0, vocab_size()).
  void set_bos_id(std::optional<std::int64_t> id);
  void set_eos_id(std::optional<std::int64_t> id);

 private:
  std::optional<std::int64_t> checked(std::optional<std::int64_t> id, const char* role) const;

  std::optional<std::int64_t> bos_id_;
  std::optional<std::int64_t> eos_id_;
};

// The tokenizer of a folder as Hugging Face saves it: tokenizer.json when it
// is a byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen2), else tokenizer.model
// (SentencePiece: Llama-2, TinyLlama, Mistral). BOS and EOS come from
// tokenizer_config.json's bos_token / eos_token where it names them, else
// (SentencePiece) from the model. A lorafed::FormatError names the file and
// what is wrong, or what was looked for when neither is there.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& folder);

}  // namespace lorafed::text
