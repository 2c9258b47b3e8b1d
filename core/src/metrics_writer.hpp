#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace lorafed {

// <out>/metrics.jsonl: one JSON object per line, per round ("type": "round")
// and per client result ("type": "client"), each record handed to the
// kernel as written so a crashed run keeps what it measured; <out>/summary.json at
// the end, written atomically.
//
// A record that cannot be written (a full disk) throws lorafed::Error at
// once, naming the file and the system's reason, and the part of the
// records already written is cut off again: the file holds whole records only.
class MetricsWriter {
 public:
  // A new metrics.jsonl; or, resuming after round `keep_through_round`, the
  // existing one without the lines of later rounds (a crashed run's partial
  // round), appended to from there.
  explicit MetricsWriter(const std::filesystem::path& output_dir, int keep_through_round = -1);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void record(const nlohmann::json& line);
  // Several records in one write(2) (a round's client results): all of them
  // are in the file, or none.
  void record_all(const std::vector<nlohmann::json>& lines);
  void write_summary(const nlohmann::json& summary);
  const std::filesystem::path& output_dir() const { return output_dir_; }

 private:
  void append(const std::string& text);

  std::filesystem::path output_dir_;
  std::filesystem::path lines_path_;
  int lines_fd_ = -1;
  std::mutex mutex_;
};

}  // namespace lorafed
