#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lorafed/export.hpp"

namespace lorafed {

// Typed, read-tracked access to one TOML table of a configuration file.
//
// Every error names the file, the table and the key, the type expected and
// the type found. Keys are marked as read when asked for; after all readers
// have run, reject_unknown_keys() turns a misspelt key into an error instead
// of a silently ignored setting.
//
// Supported value types: bool, std::int64_t, double (an integer is accepted
// where a float is expected), std::string, and std::vector of those.
class LORAFED_API ConfigTable {
 public:
  static ConfigTable parse_file(const std::filesystem::path& path);
  static ConfigTable parse_string(std::string_view text, std::string source_name);

  ConfigTable();  // an empty table, for defaults
  ~ConfigTable();
  ConfigTable(const ConfigTable&);
  ConfigTable& operator=(const ConfigTable&);

  // The sub-table `name` ("strategy", or a dotted path such as "model.base").
  // A missing sub-table reads as an empty one; a key of another type is an error.
  ConfigTable section(std::string_view name) const;
  bool contains(std::string_view key) const;
  std::vector<std::string> keys() const;

  template <class T>
  T get(std::string_view key, const T& fallback) const;
  template <class T>
  T require(std::string_view key) const;
  template <class T>
  std::optional<T> find(std::string_view key) const;

  // Sets `key` ("section.key") from TOML text such as `0.1` or `"inproc"`,
  // creating tables on the way. Used by `--set` on the command line.
  void set_from_text(std::string_view dotted_key, std::string_view value_text);

  // Marks a key as read without reading it (the host reads `name` itself).
  void mark_read(std::string_view key) const;
  // Throws ConfigError naming every key in this table and its sub-tables
  // that nobody read.
  void reject_unknown_keys() const;

  // This table with everything in it (--set included) as TOML text, and as
  // JSON text: what a run records of its resolved configuration.
  std::string to_toml() const;
  std::string to_json() const;

  // "[strategy] key 'epsilon' in examples/fedhl.toml": for messages.
  std::string where(std::string_view key) const;
  const std::string& source() const;
  const std::string& path() const;  // dotted table path, "" for the root

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared: sections see the same document
  std::string path_;
};

// "<what> must be <rule>, got <value>" for a key: a ConfigError with where().
[[noreturn]] LORAFED_API void throw_config_error(const ConfigTable& table, std::string_view key,
                                                 std::string_view problem);

}  // namespace lorafed
