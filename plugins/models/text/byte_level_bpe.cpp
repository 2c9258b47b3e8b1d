#include "byte_level_bpe.hpp"

#include <algorithm>
#include <unordered_map>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "byte_alphabet.hpp"
#include "json_fields.hpp"
#include "normalizer.hpp"
#include "pre_tokenizer.hpp"
#include "string_map.hpp"
#include "utf8.hpp"

namespace lorafed::text {
namespace {

// Whether a pre-tokenizer (or one in its Sequence) is ByteLevel. Lenient: it only decides
// which reader to use; the reader checks the rest.
bool has_byte_level_step(const nlohmann::json& node) {
  if (!node.is_object()) return false;
  const auto type = node.find("type");
  if (type == node.end() || !type->is_string()) return false;
  if (*type == "ByteLevel") return true;
  const auto steps = node.find("pretokenizers");
  if (*type != "Sequence" || steps == node.end() || !steps->is_array()) return false;
  return std::any_of(steps->begin(), steps->end(), has_byte_level_step);
}

std::vector<AddedToken> read_added_tokens(const JsonFile& file) {
  std::vector<AddedToken> tokens;
  const nlohmann::json* list = file.optional_member(file.root(), "added_tokens", "");
  if (list == nullptr) return tokens;
  file.require_array(*list, "added_tokens");
  for (std::size_t index = 0; index < list->size(); ++index) {
    const std::string where = element_path("added_tokens", index);
    const nlohmann::json& entry = (*list)[index];
    AddedToken token;
    token.id = file.token_id(file.member(entry, "id", where), field_path(where, "id"));
    token.content =
        file.string_value(file.member(entry, "content", where), field_path(where, "content"));
    token.single_word = file.bool_or(entry, "single_word", false, where);
    token.lstrip = file.bool_or(entry, "lstrip", false, where);
    token.rstrip = file.bool_or(entry, "rstrip", false, where);
    token.normalized = file.bool_or(entry, "normalized", true, where);
    token.special = file.bool_or(entry, "special", false, where);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

void require_byte_level_decoder(const JsonFile& file) {
  const nlohmann::json* decoder = file.optional_member(file.root(), "decoder", "");
  const std::optional<std::string> type =
      decoder == nullptr ? std::nullopt : file.optional_string(*decoder, "type", "decoder");
  if (type != "ByteLevel") {
    file.fail("decoder", "\"" + type.value_or("null") +
                             "\" is not supported: lorafed decodes a byte-level BPE with the "
                             "ByteLevel decoder");
  }
}

// What a model token decodes to: the bytes its characters stand for; a token
// with a character outside the byte alphabet is its own UTF-8, as in the tokenizers crate.
std::string token_bytes(const std::string& token) {
  std::string bytes;
  for (std::size_t offset = 0; offset < token.size(); offset += utf8_length_at(token, offset)) {
    const auto byte = byte_of_symbol(code_point_at(token, offset));
    if (!byte) return token;
    bytes.push_back(static_cast<char>(*byte));
  }
  return bytes;
}

}  // namespace

struct ByteLevelBpeTokenizer::Parts {
  Parts(const JsonFile& file, const std::vector<AddedToken>& added)
      : normalizer(Normalizer::from_json(file, file.optional_member(file.root(), "normalizer", ""),
                                         "normalizer")),
        pre_tokenizer(PreTokenizer::from_json(
            file, file.optional_member(file.root(), "pre_tokenizer", ""), "pre_tokenizer")),
        model(BpeModel::from_json(file, file.member(file.root(), "model", ""), "model")),
        raw_tokens(tokens_where(added, false)),
        normalized_tokens(tokens_where(added, true)) {}

  // The added tokens matched before / after normalization; the latter by their normalized form.
  std::vector<AddedToken> tokens_where(const std::vector<AddedToken>& added,
                                       bool normalized) const {
    std::vector<AddedToken> chosen;
    for (const AddedToken& token : added) {
      if (token.normalized != normalized) continue;
      chosen.push_back(token);
      if (normalized) chosen.back().content = normalizer.apply(token.content);
    }
    return chosen;
  }

  void encode_plain(std::string_view text, std::vector<std::int64_t>& ids) const {
    for (const std::string& piece : pre_tokenizer.apply(text)) model.tokenize(piece, ids);
  }

  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedTokenSplitter raw_tokens;
  AddedTokenSplitter normalized_tokens;
  StringMap<std::int64_t> added_ids;
  std::unordered_map<std::int64_t, std::string> decoded;  // id → bytes
  std::int64_t vocab_size = 0;
};

std::optional<std::string> ByteLevelBpeTokenizer::why_not_byte_level(const JsonFile& file) {
  const nlohmann::json& model = file.member(file.root(), "model", "");
  const auto type = file.optional_string(model, "type", "model");
  if (type != "BPE") return "its model is \"" + type.value_or("null") + "\", not BPE";
  const nlohmann::json* pre_tokenizer = file.optional_member(file.root(), "pre_tokenizer", "");
  if (pre_tokenizer == nullptr || !has_byte_level_step(*pre_tokenizer)) {
    return "its BPE has no ByteLevel pre-tokenizer (a SentencePiece-style BPE)";
  }
  return std::nullopt;
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_file(
    const std::filesystem::path& path) {
  return from_json(JsonFile(path));
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_json(const JsonFile& file) {
  if (const auto reason = why_not_byte_level(file)) {
    file.fail("", "not a byte-level BPE tokenizer: " + *reason);
  }
  require_byte_level_decoder(file);
  const std::vector<AddedToken> added = read_added_tokens(file);
  auto parts = std::make_unique<Parts>(file, added);
  for (const auto& [id, token] : parts->model.tokens()) {
    parts->decoded.emplace(id, token_bytes(token));
  }
  for (const AddedToken& token : added) {
    parts->added_ids.emplace(token.content, token.id);
    parts->decoded[token.id] = token.content;
  }
  std::int64_t largest = parts->model.largest_id();
  for (const AddedToken& token : added) largest = std::max(largest, token.id);
  parts->vocab_size = largest + 1;
  return std::unique_ptr<ByteLevelBpeTokenizer>(new ByteLevelBpeTokenizer(std::move(parts)));
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(std::unique_ptr<const Parts> parts)
    : parts_(std::move(parts)) {}

ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

std::vector<std::int64_t> ByteLevelBpeTokenizer::encode(std::string_view text) const {
  require_utf8(text, "the text to encode");
  std::vector<std::int64_t> ids;
  for (const TextSegment& segment : parts_->raw_tokens.split(text)) {
    if (segment.token_id) {
      ids.push_back(*segment.token_id);
      continue;
    }
    const std::string normalized =
        parts_->normalizer.active() ? parts_->normalizer.apply(segment.text) : std::string();
    const std::string_view stretch =
        parts_->normalizer.active() ? std::string_view(normalized) : segment.text;
    for (const TextSegment& inner : parts_->normalized_tokens.split(stretch)) {
      if (inner.token_id) {
        ids.push_back(*inner.token_id);
      } else {
        parts_->encode_plain(inner.text, ids);
      }
    }
  }
  return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string text;
  for (const std::int64_t id : ids) {
    const auto found = parts_->decoded.find(id);
    if (found != parts_->decoded.end()) text += found->second;
  }
  return text;
}

std::int64_t ByteLevelBpeTokenizer::vocab_size() const {
  return parts_->vocab_size;
}

std::optional<std::int64_t> ByteLevelBpeTokenizer::token_id(std::string_view token) const {
  const auto added = parts_->added_ids.find(token);
  if (added != parts_->added_ids.end()) return added->second;
  return parts_->model.id_of(token);
}

}  // namespace lorafed::text
