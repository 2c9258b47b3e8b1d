#pragma once
// Checked reading of an untrusted JSON file (tokenizer.json,
// tokenizer_config.json): every field is looked up and type-checked here, so
// a malformed file gives a lorafed::FormatError that names the file, the
// field's path and what is wrong, and no nlohmann exception escapes.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace lorafed::text {

// Ids are checked to lie in [0, kMaxTokenId]: int32 room, as the tokenizers crate's u32 ids
// and every embedding table have.
constexpr std::int64_t kMaxTokenId = 0x7FFFFFFF;

class JsonFile {
 public:
  // Reads and parses the file; FormatError when it cannot be read or is not JSON.
  explicit JsonFile(std::filesystem::path path);

  const nlohmann::json& root() const { return root_; }
  const std::filesystem::path& path() const { return path_; }

  // "<file>: <where>: <problem>", thrown as a FormatError.
  [[noreturn]] void fail(const std::string& where, const std::string& problem) const;

  // The object member `key` of the object at `where`; absent → FormatError.
  const nlohmann::json& member(const nlohmann::json& object, std::string_view key,
                               const std::string& where) const;
  // The member, or nullptr when it is absent or null.
  const nlohmann::json* optional_member(const nlohmann::json& object, std::string_view key,
                                        const std::string& where) const;

  std::string string_value(const nlohmann::json& value, const std::string& where) const;
  std::optional<std::string> optional_string(const nlohmann::json& object, std::string_view key,
                                             const std::string& where) const;
  bool bool_or(const nlohmann::json& object, std::string_view key, bool fallback,
               const std::string& where) const;
  // An integer in [0, kMaxTokenId].
  std::int64_t token_id(const nlohmann::json& value, const std::string& where) const;

  void require_object(const nlohmann::json& value, const std::string& where) const;
  void require_array(const nlohmann::json& value, const std::string& where) const;

 private:
  std::filesystem::path path_;
  nlohmann::json root_;
};

// "where.key", or "key" at the top.
std::string field_path(const std::string& where, std::string_view key);
// "where[index]".
std::string element_path(const std::string& where, std::size_t index);

}  // namespace lorafed::text
