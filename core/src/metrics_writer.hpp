#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>

namespace lorafed {

// <out>/metrics.jsonl: one JSON object per line, per round ("type": "round")
// and per client result ("type": "client"), flushed as written so a crashed
// run keeps what it measured; <out>/summary.json at the end, written atomically.
class MetricsWriter {
 public:
  // A new metrics.jsonl; or, resuming after round `keep_through_round`, the
  // existing one without the lines of later rounds (a crashed run's partial
  // round), appended to from there.
  explicit MetricsWriter(const std::filesystem::path& output_dir, int keep_through_round = -1);

  void record(const nlohmann::json& line);
  void write_summary(const nlohmann::json& summary);
  const std::filesystem::path& output_dir() const { return output_dir_; }

 private:
  std::filesystem::path output_dir_;
  std::ofstream lines_;
  std::mutex mutex_;
};

}  // namespace lorafed
