#include "tokenizer.hpp"

#include "byte_level_bpe.hpp"
#include "json_fields.hpp"
#include "lorafed/error.hpp"
#include "sentencepiece_tokenizer.hpp"

namespace lorafed::text {
namespace {

// tokenizer_config.json's bos_token / eos_token: a string, or an added token's object with
// "content". nullopt when absent; an empty string when null (the model has none).
std::optional<std::string> configured_token(const JsonFile& config, std::string_view key) {
  const nlohmann::json& root = config.root();
  config.require_object(root, "");
  const auto found = root.find(key);
  if (found == root.end()) return std::nullopt;
  if (found->is_null()) return std::string();
  if (found->is_object()) {
    return config.string_value(config.member(*found, "content", std::string(key)),
                               field_path(std::string(key), "content"));
  }
  return config.string_value(*found, std::string(key));
}

std::optional<std::int64_t> resolve(const JsonFile& config, std::string_view key,
                                    const std::string& token, const Tokenizer& tokenizer) {
  if (token.empty()) return std::nullopt;
  const auto id = tokenizer.token_id(token);
  if (!id) config.fail(std::string(key), "\"" + token + "\" is not a token of the tokenizer");
  return id;
}

void apply_config(const std::filesystem::path& config_path, Tokenizer& tokenizer) {
  const JsonFile config(config_path);
  if (const auto bos = configured_token(config, "bos_token")) {
    tokenizer.set_bos_id(resolve(config, "bos_token", *bos, tokenizer));
  }
  if (const auto eos = configured_token(config, "eos_token")) {
    tokenizer.set_eos_id(resolve(config, "eos_token", *eos, tokenizer));
  }
}

}  // namespace

Tokenizer::~Tokenizer() = default;

std::optional<std::int64_t> Tokenizer::checked(std::optional<std::int64_t> id,
                                               const char* role) const {
  if (id && (*id < 0 || *id >= vocab_size())) {
    throw ConfigError(std::string("the ") + role + " id " + std::to_string(*id) +
                      " is not in the tokenizer's vocabulary of " + std::to_string(vocab_size()) +
                      " ids");
  }
  return id;
}

void Tokenizer::set_bos_id(std::optional<std::int64_t> id) {
  bos_id_ = checked(id, "BOS");
}

void Tokenizer::set_eos_id(std::optional<std::int64_t> id) {
  eos_id_ = checked(id, "EOS");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& folder) {
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error)) {
    throw FormatError(folder.string() +
                      ": no such folder (a tokenizer's folder as Hugging Face "
                      "saves it: tokenizer.json or tokenizer.model)");
  }
  const std::filesystem::path json_path = folder / "tokenizer.json";
  const std::filesystem::path model_path = folder / "tokenizer.model";
  std::unique_ptr<Tokenizer> tokenizer;
  std::string json_found = "none there";
  if (std::filesystem::exists(json_path, error)) {
    const JsonFile file(json_path);
    const auto why_not = ByteLevelBpeTokenizer::why_not_byte_level(file);
    if (!why_not) {
      tokenizer = ByteLevelBpeTokenizer::from_json(file);
    } else {
      json_found = "found one, but " + *why_not;
    }
  }
  if (!tokenizer && std::filesystem::exists(model_path, error)) {
    tokenizer = SentencePieceTokenizer::from_file(model_path);
  }
  if (!tokenizer) {
    throw FormatError(folder.string() +
                      ": no tokenizer lorafed reads; looked for tokenizer.json as a byte-level "
                      "BPE (GPT-2, SmolLM2, Llama-3, Qwen2: " +
                      json_found +
                      ") and then tokenizer.model, a SentencePiece model (Llama-2, TinyLlama, "
                      "Mistral: none there)");
  }
  const std::filesystem::path config_path = folder / "tokenizer_config.json";
  if (std::filesystem::exists(config_path, error)) apply_config(config_path, *tokenizer);
  return tokenizer;
}

}  // namespace lorafed::text
