#include "cli/sweep_command.hpp"

#include <unistd.h>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "lorafed/error.hpp"
#include "lorafed/log.hpp"
#include "src/federation_config.hpp"
#include "src/runs.hpp"
#include "src/sdk/atomic_file.hpp"
#include "src/stop_signal.hpp"
#include "src/sweep/sweep_plan.hpp"
#include "src/sweep/sweep_table.hpp"

namespace lorafed::cli {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  write_file_atomically(path, [&text](std::ostream& out) { out << text; });
}

// A point's configuration without its comment header, which names the sweep
// file: a renamed or moved sweep file states the same runs.
std::string configuration_body(const std::string& config_toml) {
  std::istringstream lines(config_toml);
  std::string body;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) body += line + '\n';
  }
  return body;
}

// What a point's directory holds before the sweep runs it.
enum class PointState {
  kNew,       // nothing of a run, or a configuration nothing was run with
  kFinished,  // a finished run of this configuration: not run again
  kCutShort,  // a run of this configuration that stopped: resumed from its checkpoint
  kForeign,   // results of another configuration: the sweep refuses to start
};

struct PointDirectory {
  PointState state = PointState::kNew;
  std::optional<nlohmann::json> summary;  // kFinished
};

std::optional<nlohmann::json> read_summary(const fs::path& directory) {
  const auto summary = read_text(directory / "summary.json");
  if (!summary) return std::nullopt;
  try {
    return nlohmann::json::parse(*summary);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // cut off mid-write by hand or by a full disk: not finished
  }
}

PointDirectory examine(const fs::path& directory, const std::string& config_toml) {
  const auto written = read_text(directory / "config.toml");
  const bool has_results =
      fs::exists(directory / "summary.json") || fs::exists(directory / "metrics.jsonl");
  if (!written) return {};
  if (configuration_body(*written) != configuration_body(config_toml)) {
    return {has_results ? PointState::kForeign : PointState::kNew, std::nullopt};
  }
  if (auto summary = read_summary(directory)) return {PointState::kFinished, std::move(summary)};
  if (fs::exists(directory / "checkpoint" / "checkpoint.json")) return {PointState::kCutShort, {}};
  return {};
}

nlohmann::json describe(const SweepPlan& plan, const fs::path& config,
                        const std::vector<std::optional<nlohmann::json>>& summaries) {
  nlohmann::json points = nlohmann::json::array();
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepPoint& point = plan.points[i];
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [axis, label] : point.labels) labels[axis] = label;
    points.push_back({{"name", point.name},
                      {"group", point.group},
                      {"labels", labels},
                      {"seed", point.seed},
                      {"status", summaries[i] ? "ok" : "failed"}});
  }
  return {
      {"config", config.string()}, {"axes", plan.axes}, {"seeds", plan.seeds}, {"points", points}};
}

}  // namespace

int sweep(const SweepOptions& options, const PluginRegistry& registry, std::ostream& out) {
  const SweepPlan plan = plan_sweep(options.config, options.overrides, options.output_dir);

  // Every point is loaded and made through its plugins' own checks (each
  // plugin reads its table, no key is left unread) before any runs, also
  // for --dry-run: a mistake anywhere in the grid costs no compute.
  const fs::path check_dir =
      fs::temp_directory_path() / ("lorafed-sweep-check-" + std::to_string(::getpid()));
  fs::create_directories(check_dir);
  std::vector<FederationConfig> configs;
  try {
    for (const SweepPoint& point : plan.points) {
      const fs::path file = check_dir / (point.name + ".toml");
      write_text(file, point.config_toml);
      try {
        configs.push_back(FederationConfig::load(file));
        check_configuration(configs.back(), registry);
      } catch (const Error& error) {
        throw ConfigError("sweep point " + point.name + ": " + error.what());
      }
    }
  } catch (...) {
    fs::remove_all(check_dir);
    throw;
  }
  fs::remove_all(check_dir);

  // A folder that holds results of another configuration is never written
  // over: the sweep stops before anything runs or is removed.
  std::vector<PointDirectory> found;
  std::vector<std::string> foreign;
  for (const SweepPoint& point : plan.points) {
    found.push_back(examine(plan.output_dir / point.name, point.config_toml));
    if (found.back().state == PointState::kForeign) foreign.push_back(point.name);
  }
  if (!foreign.empty()) {
    std::string named;
    for (std::size_t i = 0; i < foreign.size() && i < 3; ++i) named += (i ? ", " : "") + foreign[i];
    if (foreign.size() > 3) named += " and " + std::to_string(foreign.size() - 3) + " more";
    throw ConfigError(
        std::to_string(foreign.size()) + " point folder(s) under " + plan.output_dir.string() +
        " hold results of another configuration (their config.toml differs): " + named +
        "; move or remove them, or give the sweep another --out");
  }

  if (options.dry_run) {
    for (std::size_t i = 0; i < plan.points.size(); ++i) {
      out << (plan.output_dir / plan.points[i].name).string();
      if (found[i].state == PointState::kFinished) out << " (done)";
      if (found[i].state == PointState::kCutShort) out << " (resumes from its checkpoint)";
      out << "\n";
    }
    out << plan.points.size() << " runs, each checked\n";
    return 0;
  }

  fs::create_directories(plan.output_dir);
  std::vector<std::optional<nlohmann::json>> summaries;
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepPoint& point = plan.points[i];
    const fs::path directory = plan.output_dir / point.name;
    summaries.push_back(found[i].summary);
    fs::create_directories(directory);
    if (found[i].state == PointState::kNew)
      write_text(directory / "config.toml", point.config_toml);
    configs[i] = FederationConfig::load(directory / "config.toml");
  }

  std::size_t failed = 0;
  at::set_num_threads(1);  // as `lorafed simulate`: results independent of the core count
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepPoint& point = plan.points[i];
    if (summaries[i]) {
      spdlog::info("sweep {}/{}: {} already done", i + 1, plan.points.size(), point.name);
      continue;
    }
    const fs::path directory = plan.output_dir / point.name;
    const bool resume = found[i].state == PointState::kCutShort;
    spdlog::info("sweep {}/{}: {}{}", i + 1, plan.points.size(), point.name,
                 resume ? ", resumed from its checkpoint" : "");
    configure_logging(options.log_level.empty() ? configs[i].log_level : options.log_level);
    fs::remove(directory / "error.txt");
    try {
      summaries[i] = run_simulation(configs[i], registry, resume ? directory : fs::path());
    } catch (const Interrupted& error) {
      // SIGINT or SIGTERM stops the sweep, not only this point: what
      // finished is kept, and the same command continues from here.
      configure_logging("info");
      spdlog::error("sweep stopped in point {} ({}/{}): {}; run the same command to continue",
                    point.name, i + 1, plan.points.size(), error.what());
      return StopSignal::kExitCode;
    } catch (const std::exception& error) {
      ++failed;
      spdlog::error("sweep point {} failed: {}", point.name, error.what());
      write_text(directory / "error.txt", std::string(error.what()) + "\n");
    }
    configure_logging("info");
  }

  const SweepTables tables = tabulate_sweep(plan, summaries);
  write_text(plan.output_dir / "runs.csv", tables.runs_csv);
  write_text(plan.output_dir / "results.csv", tables.results_csv);
  write_text(plan.output_dir / "results.md", tables.results_md);
  write_text(plan.output_dir / "sweep.json",
             describe(plan, options.config, summaries).dump(2) + "\n");
  out << tables.results_md;
  spdlog::info("sweep: {} runs, {} failed; tables in {}", plan.points.size(), failed,
               plan.output_dir.string());
  return failed == 0 ? 0 : 1;
}

}  // namespace lorafed::cli
