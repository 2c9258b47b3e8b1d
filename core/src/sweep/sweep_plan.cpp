#include "src/sweep/sweep_plan.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <set>
#include <sstream>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

// One value an axis takes: its label and the keys it sets.
struct AxisValue {
  std::string label;
  toml::table keys;  // dotted key (one TOML key with dots in it) → value
};

struct Axis {
  std::string name;
  std::vector<AxisValue> values;
};

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& problem) {
  throw ConfigError("[sweep] in " + path.string() + ": " + problem);
}

std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// A value's label: a string as it is, a float in its shortest exact form
// (0.1, not 0.10000000000000001), an array as [a, b], anything else as TOML writes it.
std::string label_of(const toml::node& node) {
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* number = node.as_floating_point()) {
    std::array<char, 64> buffer{};
    const auto end = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number->get()).ptr;
    return std::string(buffer.data(), end);
  }
  if (const auto* array = node.as_array()) {
    std::string text = "[";
    for (const toml::node& element : *array)
      text += (text.size() > 1 ? ", " : "") + label_of(element);
    return text + "]";
  }
  std::ostringstream out;
  node.visit([&out](const auto& value) { out << value; });
  return out.str();
}

// Flattens nested tables into dotted keys: {lora = {rank = 8}} → "lora.rank".
toml::table parse_toml_file(const std::filesystem::path& path) {
  try {
    return toml::parse_file(path.string());
  } catch (const toml::parse_error& error) {
    throw ConfigError(path.string() + ":" + std::to_string(error.source().begin.line) + ": " +
                      std::string(error.description()));
  }
}

// Writes `overlay` into `target`: tables merge key by key, anything else replaces.
void merge_over(toml::table& target, const toml::table& overlay) {
  for (const auto& [key, node] : overlay) {
    toml::table* into = target[key].as_table();
    if (into != nullptr && node.is_table()) {
      merge_over(*into, *node.as_table());
    } else {
      target.insert_or_assign(key, node);
    }
  }
}

void flatten(const toml::table& table, const std::string& prefix,
             std::vector<std::pair<std::string, const toml::node*>>& leaves) {
  for (const auto& [key, node] : table) {
    if (const auto* sub = node.as_table()) {
      flatten(*sub, join(prefix, key.str()), leaves);
    } else {
      leaves.emplace_back(join(prefix, key.str()), &node);
    }
  }
}

bool all_tables(const toml::table& table) {
  return !table.empty() && std::all_of(table.begin(), table.end(),
                                       [](const auto& entry) { return entry.second.is_table(); });
}

// [sweep.grid]: an array at a dotted key is an axis over that key's values; a
// table of tables is a named axis whose entries each set several keys.
void read_grid(const std::filesystem::path& path, const toml::table& table,
               const std::string& prefix, std::vector<Axis>& axes) {
  for (const auto& [key, node] : table) {
    const std::string name = join(prefix, key.str());
    if (const auto* values = node.as_array()) {
      Axis axis{name, {}};
      for (const toml::node& value : *values) {
        AxisValue entry{label_of(value), {}};
        entry.keys.insert_or_assign(name, value);
        axis.values.push_back(std::move(entry));
      }
      if (axis.values.empty()) fail(path, "axis '" + name + "' lists no values");
      axes.push_back(std::move(axis));
    } else if (const auto* sub = node.as_table()) {
      if (!all_tables(*sub)) {
        read_grid(path, *sub, name, axes);
        continue;
      }
      Axis axis{name, {}};
      for (const auto& [label, entry_node] : *sub) {
        std::vector<std::pair<std::string, const toml::node*>> leaves;
        flatten(*entry_node.as_table(), "", leaves);
        if (leaves.empty())
          fail(path, "'" + name + "." + std::string(label.str()) + "' sets no key");
        AxisValue entry{std::string(label.str()), {}};
        for (const auto& [dotted, leaf] : leaves) entry.keys.insert_or_assign(dotted, *leaf);
        axis.values.push_back(std::move(entry));
      }
      axes.push_back(std::move(axis));
    } else {
      fail(path,
           "grid key '" + name + "' must list values (an array) or name them (a table of tables)");
    }
  }
}

// Sets a dotted key, creating tables on the way.
void assign(toml::table& root, const std::string& dotted, const toml::node& value,
            const std::filesystem::path& path) {
  toml::table* table = &root;
  std::string_view rest = dotted;
  for (std::size_t dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
    const std::string part(rest.substr(0, dot));
    rest.remove_prefix(dot + 1);
    if (!table->contains(part)) table->insert_or_assign(part, toml::table{});
    table = (*table)[part].as_table();
    if (table == nullptr) fail(path, "cannot set '" + dotted + "': '" + part + "' is not a table");
  }
  table->insert_or_assign(std::string(rest), value);
}

toml::table parse_value(const std::string& text) {
  try {
    return toml::parse("value = " + text);
  } catch (const toml::parse_error&) {
    toml::table bare;
    bare.insert_or_assign("value", text);  // a bare word is meant as a string
    return bare;
  }
}

std::vector<Axis> order_axes(const std::filesystem::path& path, std::vector<Axis> axes,
                             const toml::table& sweep) {
  const auto* order = sweep["order"].as_array();
  if (order == nullptr) {
    if (sweep.contains("order")) fail(path, "'order' must be an array of axis names");
    return axes;
  }
  std::vector<Axis> ordered;
  for (const toml::node& entry : *order) {
    const auto* name = entry.as_string();
    if (name == nullptr) fail(path, "'order' must be an array of axis names");
    const auto found = std::find_if(axes.begin(), axes.end(),
                                    [&](const Axis& axis) { return axis.name == name->get(); });
    if (found == axes.end()) fail(path, "'order' names '" + name->get() + "', which is no axis");
    ordered.push_back(std::move(*found));
    axes.erase(found);
  }
  for (Axis& axis : axes) ordered.push_back(std::move(axis));
  return ordered;
}

// [[sweep.skip]]: each entry maps axes to a label or labels; a point that
// matches every one of an entry's axes is left out.
using SkipRule = std::map<std::string, std::set<std::string>>;

std::vector<SkipRule> read_skips(const std::filesystem::path& path, const toml::table& sweep,
                                 const std::vector<Axis>& axes) {
  std::vector<SkipRule> rules;
  const toml::node* node = sweep.get("skip");
  if (node == nullptr) return rules;
  const auto* entries = node->as_array();
  if (entries == nullptr) fail(path, "'skip' must be an array of tables ([[sweep.skip]])");
  for (const toml::node& entry : *entries) {
    const auto* table = entry.as_table();
    if (table == nullptr) fail(path, "'skip' must be an array of tables ([[sweep.skip]])");
    std::vector<std::pair<std::string, const toml::node*>> leaves;
    flatten(*table, "", leaves);
    SkipRule rule;
    for (const auto& [axis, value] : leaves) {
      if (std::none_of(axes.begin(), axes.end(), [&](const Axis& a) { return a.name == axis; })) {
        fail(path, "a skip entry names '" + axis + "', which is no axis");
      }
      if (const auto* labels = value->as_array()) {
        for (const toml::node& label : *labels) rule[axis].insert(label_of(label));
      } else {
        rule[axis].insert(label_of(*value));
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::string directory_name(const std::vector<std::pair<std::string, std::string>>& labels,
                           std::int64_t seed) {
  std::string name;
  for (const auto& [axis, label] : labels) name += label + "-";
  name += "seed" + std::to_string(seed);
  for (char& c : name) {
    const bool safe =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    if (!safe) c = '_';
  }
  return name;
}

}  // namespace

SweepPlan plan_sweep(const std::filesystem::path& config_path,
                     const std::vector<std::string>& overrides,
                     const std::filesystem::path& output_dir) {
  toml::table document = parse_toml_file(config_path);
  // [sweep] base = "file.toml": the federation the grid varies, with this
  // file's own tables over it (a key here replaces the base's).
  if (const toml::node* base = document.at_path("sweep.base").node()) {
    if (!base->is_string()) fail(config_path, "'base' must be the path of a configuration file");
    const std::filesystem::path base_path =
        config_path.parent_path() / std::filesystem::path(base->as_string()->get());
    if (!std::filesystem::exists(base_path)) {
      fail(config_path, "base configuration '" + base_path.string() + "' does not exist");
    }
    toml::table merged = parse_toml_file(base_path);
    if (merged.contains("sweep")) {
      fail(config_path, "base configuration '" + base_path.string() + "' has a [sweep] table");
    }
    merge_over(merged, document);
    document = std::move(merged);
    document["sweep"].as_table()->erase("base");
  }
  for (const std::string& assignment : overrides) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw ConfigError("--set expects section.key=value, got '" + assignment + "'");
    }
    const toml::table parsed = parse_value(assignment.substr(equals + 1));
    assign(document, assignment.substr(0, equals), *parsed.get("value"), config_path);
  }

  const auto* sweep_node = document.get("sweep");
  if (sweep_node == nullptr || !sweep_node->is_table()) {
    throw ConfigError(config_path.string() +
                      " has no [sweep] table; docs/outputs.md §Sweeps shows how to write one");
  }
  const toml::table sweep = *sweep_node->as_table();
  document.erase("sweep");
  for (const auto& [key, node] : sweep) {
    static const std::set<std::string_view> kKeys = {"seeds", "order", "grid", "skip", "metric"};
    if (!kKeys.contains(key.str())) {
      fail(config_path, "unknown key '" + std::string(key.str()) +
                            "' (expected base, seeds, order, grid, skip, metric)");
    }
  }

  SweepPlan plan;
  if (const toml::node* metric = sweep.get("metric")) {
    if (!metric->is_string()) fail(config_path, "'metric' must be a metric's name");
    plan.metric = metric->as_string()->get();
  }
  std::vector<Axis> axes;
  if (const auto* grid = sweep["grid"].as_table()) {
    read_grid(config_path, *grid, "", axes);
  } else if (sweep.contains("grid")) {
    fail(config_path, "'grid' must be a table ([sweep.grid])");
  }
  axes = order_axes(config_path, std::move(axes), sweep);
  for (const Axis& axis : axes) plan.axes.push_back(axis.name);
  const std::vector<SkipRule> skips = read_skips(config_path, sweep, axes);

  if (const auto* seeds = sweep["seeds"].as_array()) {
    for (const toml::node& seed : *seeds) {
      const auto* value = seed.as_integer();
      if (value == nullptr || value->get() < 0)
        fail(config_path, "'seeds' must be non-negative integers");
      plan.seeds.push_back(value->get());
    }
  } else if (sweep.contains("seeds")) {
    fail(config_path, "'seeds' must be an array of integers");
  }
  if (plan.seeds.empty()) {
    plan.seeds.push_back(document["federation"]["seed"].value_or<std::int64_t>(0));
  }

  plan.output_dir = output_dir;
  if (plan.output_dir.empty()) {
    plan.output_dir =
        document["federation"]["output_dir"].value_or("runs/" + config_path.stem().string());
  }

  // The grid, first axis slowest: an odometer over the axes' value indices.
  std::vector<std::size_t> index(axes.size(), 0);
  std::set<std::string> names;
  while (true) {
    std::vector<std::pair<std::string, std::string>> labels;
    toml::table point_document = document;
    std::set<std::string> keys_set;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const AxisValue& value = axes[a].values[index[a]];
      labels.emplace_back(axes[a].name, value.label);
      for (const auto& [key, node] : value.keys) {
        const std::string dotted(key.str());
        if (!keys_set.insert(dotted).second) {
          fail(config_path, "two axes set '" + dotted + "'; each key may vary along one axis");
        }
        assign(point_document, dotted, node, config_path);
      }
    }
    const bool skipped = std::any_of(skips.begin(), skips.end(), [&](const SkipRule& rule) {
      return std::all_of(rule.begin(), rule.end(), [&](const auto& condition) {
        const auto& [axis, allowed] = condition;
        const auto label = std::find_if(labels.begin(), labels.end(),
                                        [&](const auto& entry) { return entry.first == axis; });
        return allowed.contains(label->second);
      });
    });
    if (!skipped) {
      std::string group;
      for (const auto& [axis, label] : labels) group += (group.empty() ? "" : ", ") + label;
      for (const std::int64_t seed : plan.seeds) {
        SweepPoint point;
        point.labels = labels;
        point.seed = seed;
        point.group = group;
        point.name = directory_name(labels, seed);
        if (!names.insert(point.name).second) {
          fail(config_path, "two points would share the directory '" + point.name +
                                "'; give the axes' values distinct labels");
        }
        toml::table seeded = point_document;
        assign(seeded, "federation.seed", toml::value<std::int64_t>(seed), config_path);
        assign(seeded, "federation.output_dir",
               toml::value<std::string>((plan.output_dir / point.name).string()), config_path);
        std::ostringstream text;
        text << "# Written by `lorafed sweep " << config_path.string() << "` for the point "
             << point.name << ".\n"
             << seeded << "\n";
        point.config_toml = text.str();
        plan.points.push_back(std::move(point));
      }
    }
    // Advance the odometer; the last axis turns fastest.
    bool wrapped = true;
    for (std::size_t a = axes.size(); a-- > 0;) {
      if (++index[a] < axes[a].values.size()) {
        wrapped = false;
        break;
      }
      index[a] = 0;
    }
    if (wrapped) break;
  }
  if (plan.points.empty()) fail(config_path, "every point of the grid is skipped");
  return plan;
}

}  // namespace lorafed
