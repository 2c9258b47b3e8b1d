#include "src/metrics_writer.hpp"

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {

MetricsWriter::MetricsWriter(const std::filesystem::path& output_dir) : output_dir_(output_dir) {
  std::filesystem::create_directories(output_dir_);
  lines_.open(output_dir_ / "metrics.jsonl", std::ios::trunc);
  if (!lines_) throw Error("cannot write '" + (output_dir_ / "metrics.jsonl").string() + "'");
}

void MetricsWriter::record(const nlohmann::json& line) {
  std::lock_guard lock(mutex_);
  lines_ << line.dump() << '\n';
  lines_.flush();
}

void MetricsWriter::write_summary(const nlohmann::json& summary) {
  write_file_atomically(output_dir_ / "summary.json",
                        [&](std::ostream& out) { out << summary.dump(2) << '\n'; });
}

}  // namespace lorafed
