#include "src/report/run_data.hpp"

#include <spdlog/spdlog.h>

#include <fstream>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path.string() + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw Error(path.string() + ": " + error.what());
  }
}

RunData load_run(const fs::path& directory, std::string label) {
  RunData run;
  run.directory = directory;
  run.label = std::move(label);
  const fs::path metrics = directory / "metrics.jsonl";
  std::ifstream in(metrics);
  if (!in) {
    throw Error("'" + directory.string() +
                "' is neither a run directory (metrics.jsonl) nor a sweep's (sweep.json)");
  }
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& error) {
      throw Error(metrics.string() + ":" + std::to_string(number) + ": " + error.what());
    }
    const std::string type = record.value("type", "");
    if (type == "round") run.rounds.push_back(std::move(record));
    if (type == "client") run.clients.push_back(std::move(record));
  }
  if (fs::exists(directory / "summary.json")) {
    run.summary = read_json(directory / "summary.json");
    run.seed = run.summary.value("seed", std::int64_t{0});
  } else {
    spdlog::warn("{} has no summary.json (a run that did not finish): plotting what it recorded",
                 directory.string());
  }
  return run;
}

// A run directory inside a sweep's folder is labelled by its grid point, so
// that picking some of a sweep's runs still groups their seeds.
std::string label_of(const fs::path& directory) {
  const fs::path folder = fs::absolute(directory).lexically_normal();
  const std::string name = (folder.has_filename() ? folder : folder.parent_path()).filename();
  const fs::path sweep = (folder.has_filename() ? folder : folder.parent_path()).parent_path();
  if (fs::exists(sweep / "sweep.json")) {
    for (const nlohmann::json& point :
         read_json(sweep / "sweep.json").value("points", nlohmann::json::array())) {
      if (point.value("name", "") == name && !point.value("group", "").empty()) {
        return point["group"].get<std::string>();
      }
    }
  }
  return name;
}

}  // namespace

std::vector<RunData> load_runs(const fs::path& directory) {
  if (!fs::exists(directory / "sweep.json")) return {load_run(directory, label_of(directory))};
  const nlohmann::json sweep = read_json(directory / "sweep.json");
  std::vector<RunData> runs;
  for (const nlohmann::json& point : sweep.at("points")) {
    const std::string name = point.at("name").get<std::string>();
    if (point.value("status", "") != "ok") {
      spdlog::warn("leaving out sweep point {}: it failed", name);
      continue;
    }
    std::string label = point.at("group").get<std::string>();
    if (label.empty()) label = directory.filename().string();  // a sweep over seeds only
    runs.push_back(load_run(directory / name, label));
  }
  return runs;
}

}  // namespace lorafed
