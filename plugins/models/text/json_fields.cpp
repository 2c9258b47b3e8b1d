#include "json_fields.hpp"

#include <fstream>
#include <sstream>

#include "lorafed/error.hpp"

namespace lorafed::text {
namespace {

std::string type_name(const nlohmann::json& value) {
  return value.type_name();
}

// The value as JSON text, cut short: enough to recognise it in a message.
std::string excerpt(const nlohmann::json& value) {
  constexpr std::size_t kLongest = 60;
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kLongest) {
    std::size_t cut = kLongest;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

}  // namespace

JsonFile::JsonFile(std::filesystem::path path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw FormatError(path_.string() + ": cannot be read");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  try {
    root_ = nlohmann::json::parse(bytes.str());
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(path_.string() + ": is not valid JSON (" + error.what() + ")");
  }
}

void JsonFile::fail(const std::string& where, const std::string& problem) const {
  throw FormatError(path_.string() + ": " + (where.empty() ? "" : where + ": ") + problem);
}

void JsonFile::require_object(const nlohmann::json& value, const std::string& where) const {
  if (!value.is_object()) fail(where, "expected an object, found " + type_name(value));
}

void JsonFile::require_array(const nlohmann::json& value, const std::string& where) const {
  if (!value.is_array()) fail(where, "expected an array, found " + type_name(value));
}

const nlohmann::json& JsonFile::member(const nlohmann::json& object, std::string_view key,
                                       const std::string& where) const {
  const nlohmann::json* value = optional_member(object, key, where);
  if (value == nullptr) fail(field_path(where, key), "missing");
  return *value;
}

const nlohmann::json* JsonFile::optional_member(const nlohmann::json& object, std::string_view key,
                                                const std::string& where) const {
  require_object(object, where);
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return nullptr;
  return &*found;
}

std::string JsonFile::string_value(const nlohmann::json& value, const std::string& where) const {
  if (!value.is_string()) fail(where, "expected a string, found " + type_name(value));
  return value.get_ref<const std::string&>();
}

std::optional<std::string> JsonFile::optional_string(const nlohmann::json& object,
                                                     std::string_view key,
                                                     const std::string& where) const {
  const nlohmann::json* value = optional_member(object, key, where);
  if (value == nullptr) return std::nullopt;
  return string_value(*value, field_path(where, key));
}

bool JsonFile::bool_or(const nlohmann::json& object, std::string_view key, bool fallback,
                       const std::string& where) const {
  const nlohmann::json* value = optional_member(object, key, where);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    fail(field_path(where, key), "expected true or false, found " + type_name(*value));
  }
  return value->get<bool>();
}

std::int64_t JsonFile::token_id(const nlohmann::json& value, const std::string& where) const {
  if (value.is_number_unsigned()) {
    const auto id = value.get<std::uint64_t>();
    if (id <= static_cast<std::uint64_t>(kMaxTokenId)) return static_cast<std::int64_t>(id);
    fail(where, "id " + excerpt(value) + " is past " + std::to_string(kMaxTokenId));
  }
  if (value.is_number_integer()) fail(where, "id " + excerpt(value) + " is negative");
  fail(where, "expected an integer id, found " + type_name(value) + " " + excerpt(value));
}

std::string field_path(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

std::string element_path(const std::string& where, std::size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

}  // namespace lorafed::text
