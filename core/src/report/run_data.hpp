#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lorafed {

// One finished (or crashed) run as `lorafed report` reads it back.
struct RunData {
  std::filesystem::path directory;
  std::string label;  // runs with one label are seeds of one setting
  std::int64_t seed = 0;
  nlohmann::json summary;               // summary.json; empty for a run that crashed
  std::vector<nlohmann::json> rounds;   // metrics.jsonl "type": "round", in order
  std::vector<nlohmann::json> clients;  // metrics.jsonl "type": "client", in order
};

// The runs in `directory`: a sweep's (it has sweep.json; labelled by the
// sweep's grid point, failed points left out) or one run's (metrics.jsonl;
// labelled by its grid point when it lies in a sweep's folder, else by its
// folder name). Throws Error naming the directory when it is
// neither, or a line of metrics.jsonl that is not JSON.
std::vector<RunData> load_runs(const std::filesystem::path& directory);

}  // namespace lorafed
