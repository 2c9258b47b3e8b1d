#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace lorafed::cli {

struct ReportOptions {
  std::vector<std::string> run_dirs;  // run directories or sweep directories
  std::string output_dir;             // default: <the one directory>/report, or "report"
  std::string metric;
};

// `lorafed report RUN_DIR...`: PNG figures and report.md (docs/outputs.md §Reports).
int report(const ReportOptions& options, std::ostream& out);

}  // namespace lorafed::cli
