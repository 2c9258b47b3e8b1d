#include "src/metrics_writer.hpp"

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {

MetricsWriter::MetricsWriter(const std::filesystem::path& output_dir, int keep_through_round)
    : output_dir_(output_dir) {
  std::filesystem::create_directories(output_dir_);
  const std::filesystem::path path = output_dir_ / "metrics.jsonl";
  if (keep_through_round >= 0) {
    std::string kept;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded()) continue;  // a line cut short by the crash
      if (record.value("round", 0) <= keep_through_round) kept += line + '\n';
    }
    write_file_atomically(path, [&kept](std::ostream& out) { out << kept; });
  }
  lines_.open(path, keep_through_round >= 0 ? std::ios::app : std::ios::trunc);
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
