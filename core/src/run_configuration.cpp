#include "src/run_configuration.hpp"

#include <set>

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {
namespace {

constexpr const char* kFileName = "resolved-config.toml";

// Keys a resumed run may set differently.
const std::set<std::string>& resumable_keys() {
  static const std::set<std::string> keys = {"federation.rounds", "federation.log_level",
                                             "federation.output_dir"};
  return keys;
}

// Every leaf of a JSON object as "a.b.c" -> value (arrays are leaves).
void flatten(const nlohmann::json& node, const std::string& path,
             std::map<std::string, nlohmann::json>& leaves) {
  if (!node.is_object()) {
    leaves[path] = node;
    return;
  }
  for (const auto& [key, value] : node.items()) {
    flatten(value, path.empty() ? key : path + "." + key, leaves);
  }
}

std::map<std::string, nlohmann::json> leaves_of(const ConfigTable& table) {
  std::map<std::string, nlohmann::json> leaves;
  flatten(nlohmann::json::parse(table.to_json()), "", leaves);
  return leaves;
}

std::string shown(const std::map<std::string, nlohmann::json>& leaves, const std::string& key) {
  const auto found = leaves.find(key);
  return found == leaves.end() ? "(not set)" : found->second.dump();
}

}  // namespace

void write_run_configuration(const FederationConfig& config,
                             const std::filesystem::path& output_dir) {
  std::filesystem::create_directories(output_dir);
  const std::string text = config.document.to_toml();
  write_file_atomically(output_dir / kFileName, [&text](std::ostream& out) {
    out << "# The configuration of this run, --set included (docs/outputs.md)\n" << text;
  });
}

void check_resume_configuration(const FederationConfig& config,
                                const std::filesystem::path& output_dir) {
  const std::filesystem::path recorded_path = output_dir / kFileName;
  if (!std::filesystem::exists(recorded_path)) return;
  const auto recorded = leaves_of(ConfigTable::parse_file(recorded_path));
  const auto now = leaves_of(config.document);
  std::set<std::string> keys;
  for (const auto& [key, value] : recorded) keys.insert(key);
  for (const auto& [key, value] : now) keys.insert(key);
  std::string differences;
  for (const std::string& key : keys) {
    if (resumable_keys().contains(key)) continue;
    const auto was = recorded.find(key);
    const auto is = now.find(key);
    if (was != recorded.end() && is != now.end() && was->second == is->second) continue;
    differences += (differences.empty() ? "" : ", ") + key + " (" + shown(recorded, key) +
                   " in the run, " + shown(now, key) + " now)";
  }
  if (differences.empty()) return;
  throw ConfigError("--resume " + output_dir.string() +
                    ": the configuration differs from the run's (" + recorded_path.string() +
                    ") in " + differences +
                    "; only federation.rounds, federation.log_level and federation.output_dir "
                    "may change. Resume with the run's configuration, or start a new run");
}

nlohmann::json run_settings(const FederationConfig& config) {
  return {{"strategy", nlohmann::json::parse(config.strategy_table.to_json())},
          {"model", nlohmann::json::parse(config.model_table.to_json())},
          {"ranks", config.ranks},
          {"alpha", config.alpha},
          {"seed", config.seed},
          {"num_clients", config.num_clients},
          {"rounds", config.rounds},
          {"server_threads", config.server_thread_count()}};
}

}  // namespace lorafed
