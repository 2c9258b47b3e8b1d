#include "cli/report_command.hpp"

#include "src/report/report.hpp"
#include "src/report/run_data.hpp"

namespace lorafed::cli {

int report(const ReportOptions& options, std::ostream& out) {
  std::vector<RunData> runs;
  for (const std::string& directory : options.run_dirs) {
    for (RunData& run : load_runs(directory)) runs.push_back(std::move(run));
  }
  lorafed::ReportOptions report_options;
  report_options.metric = options.metric;
  report_options.output_dir = options.output_dir;
  if (report_options.output_dir.empty()) {
    report_options.output_dir = options.run_dirs.size() == 1
                                    ? std::filesystem::path(options.run_dirs.front()) / "report"
                                    : std::filesystem::path("report");
  }
  out << write_report(runs, report_options).string() << "\n";
  return 0;
}

}  // namespace lorafed::cli
