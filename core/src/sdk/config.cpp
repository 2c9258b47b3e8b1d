#include "lorafed/config.hpp"

#include <toml++/toml.h>

#include <sstream>

#include "lorafed/error.hpp"

namespace lorafed {

struct ConfigTable::Impl {
  toml::table root;
  std::string source;
  std::set<std::string> read_keys;   // dotted paths
  std::set<std::string> overridden;  // dotted paths set by --set (set_from_text)
};

namespace {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

const char* type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

template <class T>
constexpr const char* expected_name() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
  if constexpr (std::is_same_v<T, std::int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, double>) return "a float";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) return "an array of integers";
  if constexpr (std::is_same_v<T, std::vector<double>>) return "an array of floats";
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return "an array of strings";
}

// Converts one scalar node; nullopt when its type does not fit T.
template <class T>
std::optional<T> scalar_from(const toml::node& node) {
  if constexpr (std::is_same_v<T, double>) {
    if (auto v = node.value_exact<double>()) return *v;
    if (auto v = node.value_exact<std::int64_t>()) return static_cast<double>(*v);
    return std::nullopt;
  } else {
    if (auto v = node.value_exact<T>()) return *v;
    return std::nullopt;
  }
}

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

}  // namespace

ConfigTable::ConfigTable() : impl_(std::make_shared<Impl>()) {
  impl_->source = "<defaults>";
}
ConfigTable::~ConfigTable() = default;
ConfigTable::ConfigTable(const ConfigTable&) = default;
ConfigTable& ConfigTable::operator=(const ConfigTable&) = default;

ConfigTable ConfigTable::parse_file(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    throw ConfigError("configuration file '" + path.string() + "' does not exist");
  }
  ConfigTable table;
  table.impl_->source = path.string();
  try {
    table.impl_->root = toml::parse_file(path.string());
  } catch (const toml::parse_error& error) {
    std::ostringstream message;
    message << path.string() << ":" << error.source().begin.line << ":"
            << error.source().begin.column << ": " << error.description();
    throw ConfigError(message.str());
  }
  return table;
}

ConfigTable ConfigTable::parse_string(std::string_view text, std::string source_name) {
  ConfigTable table;
  table.impl_->source = std::move(source_name);
  try {
    table.impl_->root = toml::parse(text, table.impl_->source);
  } catch (const toml::parse_error& error) {
    std::ostringstream message;
    message << table.impl_->source << ":" << error.source().begin.line << ": "
            << error.description();
    throw ConfigError(message.str());
  }
  return table;
}

namespace {
const toml::table* table_at(const toml::table& root, const std::string& path) {
  if (path.empty()) return &root;
  return toml::at_path(root, path).as_table();
}
}  // namespace

ConfigTable ConfigTable::section(std::string_view name) const {
  const std::string full = join(path_, name);
  const auto node = toml::at_path(impl_->root, full);
  if (node && !node.is_table()) {
    throw_config_error(*this, name, std::string("must be a table, got ") + type_name(node.type()));
  }
  impl_->read_keys.insert(full);
  ConfigTable sub = *this;
  sub.path_ = full;
  return sub;
}

bool ConfigTable::contains(std::string_view key) const {
  const toml::table* table = table_at(impl_->root, path_);
  return table != nullptr && table->contains(key);
}

std::vector<std::string> ConfigTable::keys() const {
  std::vector<std::string> result;
  if (const toml::table* table = table_at(impl_->root, path_)) {
    for (const auto& [key, node] : *table) result.emplace_back(key.str());
  }
  return result;
}

template <class T>
std::optional<T> ConfigTable::find(std::string_view key) const {
  mark_read(key);
  const toml::table* table = table_at(impl_->root, path_);
  if (table == nullptr) return std::nullopt;
  const toml::node* node = table->get(key);
  if (node == nullptr) return std::nullopt;
  if constexpr (is_vector<T>::value) {
    using Element = typename T::value_type;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      throw_config_error(
          *this, key,
          std::string("must be ") + expected_name<T>() + ", got " + type_name(node->type()));
    }
    T values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      std::optional<Element> element = scalar_from<Element>(*array->get(i));
      if (!element) {
        throw_config_error(*this, key,
                           std::string("must be ") + expected_name<T>() + ", but element " +
                               std::to_string(i) + " is " + type_name(array->get(i)->type()));
      }
      values.push_back(*element);
    }
    return values;
  } else {
    std::optional<T> value = scalar_from<T>(*node);
    if (!value) {
      throw_config_error(
          *this, key,
          std::string("must be ") + expected_name<T>() + ", got " + type_name(node->type()));
    }
    return value;
  }
}

template <class T>
T ConfigTable::get(std::string_view key, const T& fallback) const {
  std::optional<T> value = find<T>(key);
  return value ? *value : fallback;
}

template <class T>
T ConfigTable::require(std::string_view key) const {
  std::optional<T> value = find<T>(key);
  if (!value)
    throw_config_error(*this, key, std::string("is required (") + expected_name<T>() + ")");
  return *value;
}

#define LORAFED_CONFIG_INSTANTIATE(T)                                                 \
  template LORAFED_API std::optional<T> ConfigTable::find<T>(std::string_view) const; \
  template LORAFED_API T ConfigTable::get<T>(std::string_view, const T&) const;       \
  template LORAFED_API T ConfigTable::require<T>(std::string_view) const;
LORAFED_CONFIG_INSTANTIATE(bool)
LORAFED_CONFIG_INSTANTIATE(std::int64_t)
LORAFED_CONFIG_INSTANTIATE(double)
LORAFED_CONFIG_INSTANTIATE(std::string)
LORAFED_CONFIG_INSTANTIATE(std::vector<std::int64_t>)
LORAFED_CONFIG_INSTANTIATE(std::vector<double>)
LORAFED_CONFIG_INSTANTIATE(std::vector<std::string>)
#undef LORAFED_CONFIG_INSTANTIATE

void ConfigTable::set_from_text(std::string_view dotted_key, std::string_view value_text) {
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + std::string(value_text));
  } catch (const toml::parse_error&) {
    // A bare word such as `inproc` is meant as a string.
    parsed.insert_or_assign("value", std::string(value_text));
  }
  toml::table* table = &impl_->root;
  std::string_view rest = dotted_key;
  for (std::size_t dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
    const std::string part(rest.substr(0, dot));
    rest.remove_prefix(dot + 1);
    if (!table->contains(part)) table->insert_or_assign(part, toml::table{});
    table = (*table)[part].as_table();
    if (table == nullptr) {
      throw ConfigError("cannot set '" + std::string(dotted_key) + "': '" + part +
                        "' is not a table in " + impl_->source);
    }
  }
  table->insert_or_assign(std::string(rest), *parsed.get("value"));
  impl_->overridden.insert(std::string(dotted_key));
}

void ConfigTable::mark_read(std::string_view key) const {
  impl_->read_keys.insert(join(path_, key));
}

void ConfigTable::reject_unknown_keys() const {
  std::vector<std::string> unknown;
  auto walk = [&](auto&& self, const toml::table& table, const std::string& path) -> void {
    for (const auto& [key, node] : table) {
      const std::string full = join(path, key.str());
      if (!impl_->read_keys.contains(full)) {
        unknown.push_back(full);
      } else if (const toml::table* sub = node.as_table()) {
        self(self, *sub, full);
      }
    }
  };
  if (const toml::table* table = table_at(impl_->root, path_)) walk(walk, *table, path_);
  if (unknown.empty()) return;
  // Said where each came from: the file, or a --set on the command line.
  std::vector<std::string> in_file, in_set;
  // A table nobody read is in --set when a key in it is.
  const auto set_on_command_line = [this](const std::string& key) {
    if (impl_->overridden.contains(key)) return true;
    const auto inside = impl_->overridden.lower_bound(key + ".");
    return inside != impl_->overridden.end() && inside->starts_with(key + ".");
  };
  for (const std::string& key : unknown) {
    (set_on_command_line(key) ? in_set : in_file).push_back(key);
  }
  std::string message;
  for (const auto& [keys, where] :
       {std::pair{&in_file, impl_->source}, std::pair{&in_set, std::string("--set")}}) {
    if (keys->empty()) continue;
    message += message.empty() ? "unknown configuration key" : "; unknown key";
    message += keys->size() > 1 ? "s " : " ";
    for (std::size_t i = 0; i < keys->size(); ++i) {
      message += (i ? ", '" : "'") + (*keys)[i] + "'";
    }
    message += " in " + where;
  }
  message += " (misspelt, or not an option of the chosen plugin?)";
  throw ConfigError(message);
}

namespace {

const toml::table& table_or_empty(const toml::table& root, const std::string& path) {
  static const toml::table empty;
  const toml::table* table = table_at(root, path);
  return table == nullptr ? empty : *table;
}

}  // namespace

std::string ConfigTable::to_toml() const {
  std::ostringstream text;
  text << toml::toml_formatter(table_or_empty(impl_->root, path_)) << "\n";
  return text.str();
}

std::string ConfigTable::to_json() const {
  std::ostringstream text;
  text << toml::json_formatter(table_or_empty(impl_->root, path_));
  return text.str();
}

std::string ConfigTable::where(std::string_view key) const {
  const bool overridden = impl_->overridden.contains(join(path_, key));
  return (path_.empty() ? std::string() : "[" + path_ + "] ") + "key '" + std::string(key) +
         "' in " + (overridden ? std::string("--set") : impl_->source);
}

const std::string& ConfigTable::source() const {
  return impl_->source;
}
const std::string& ConfigTable::path() const {
  return path_;
}

void throw_config_error(const ConfigTable& table, std::string_view key, std::string_view problem) {
  throw ConfigError(table.where(key) + " " + std::string(problem));
}

}  // namespace lorafed
