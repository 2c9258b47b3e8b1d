#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "src/report/run_data.hpp"

namespace lorafed {

struct ReportOptions {
  std::filesystem::path output_dir;
  std::string metric;  // the headline metric; empty: accuracy, or the first the runs report
};

// `lorafed report`: PNG figures (drawn by gnuplot) and report.md embedding
// them, from runs read back by load_runs (docs/outputs.md §Reports): the
// headline metric and the loss per round per setting, each client's metric
// at its rank after the last round, bytes moved per round, and FedHL's
// per-client truncation errors and weights. Where a setting has several
// values at one x (seeds), its line is their mean and a band spans them.
// Returns report.md's path.
std::filesystem::path write_report(const std::vector<RunData>& runs, const ReportOptions& options);

}  // namespace lorafed
