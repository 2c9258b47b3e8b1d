#include "src/metrics_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {

MetricsWriter::MetricsWriter(const std::filesystem::path& output_dir, int keep_through_round)
    : output_dir_(output_dir), lines_path_(output_dir / "metrics.jsonl") {
  std::filesystem::create_directories(output_dir_);
  if (keep_through_round >= 0) {
    std::string kept;
    std::ifstream in(lines_path_);
    for (std::string line; std::getline(in, line);) {
      const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded()) continue;  // a line cut short by the crash
      if (record.value("round", 0) <= keep_through_round) kept += line + '\n';
    }
    write_file_atomically(lines_path_, [&kept](std::ostream& out) { out << kept; });
  }
  // Unbuffered: each record goes to the kernel in write(2) calls whose
  // failure is seen at once, not at some later flush.
  const int flags =
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (keep_through_round >= 0 ? 0 : O_TRUNC);
  lines_fd_ = ::open(lines_path_.c_str(), flags, 0644);
  if (lines_fd_ < 0) {
    throw Error("cannot open '" + lines_path_.string() + "' for writing: " + std::strerror(errno));
  }
}

MetricsWriter::~MetricsWriter() {
  if (lines_fd_ >= 0) ::close(lines_fd_);
}

void MetricsWriter::record(const nlohmann::json& line) {
  append(line.dump() + '\n');
}

void MetricsWriter::record_all(const std::vector<nlohmann::json>& lines) {
  if (lines.empty()) return;
  std::string text;
  for (const nlohmann::json& line : lines) text += line.dump() + '\n';
  append(text);
}

void MetricsWriter::append(const std::string& text) {
  std::lock_guard lock(mutex_);
  const off_t size_before = ::lseek(lines_fd_, 0, SEEK_END);
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t count = ::write(lines_fd_, text.data() + written, text.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count > 0) {
      written += static_cast<std::size_t>(count);
      continue;
    }
    const int error = count < 0 ? errno : ENOSPC;  // write(2) returns 0 only when nothing fits
    std::string message =
        "cannot write a record to '" + lines_path_.string() + "': " + std::strerror(error);
    // The file keeps whole lines only: cut off what part of these got in.
    if (written > 0 && (size_before < 0 || ::ftruncate(lines_fd_, size_before) != 0)) {
      message += "; its last line is incomplete";
    }
    throw Error(message);
  }
}

void MetricsWriter::write_summary(const nlohmann::json& summary) {
  write_file_atomically(output_dir_ / "summary.json",
                        [&](std::ostream& out) { out << summary.dump(2) << '\n'; });
}

}  // namespace lorafed
