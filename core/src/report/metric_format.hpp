#pragma once

#include <fmt/format.h>

#include <string>

#include "src/statistics.hpp"

namespace lorafed {

// How people read a metric (docs/outputs.md): shares of examples answered
// right — accuracy, exact_match and their federated_, best_, final_
// variants — in percent, in tables, figures and the server's log alike;
// metrics.jsonl, summary.json and the CSV files keep fractions.
inline bool shown_in_percent(const std::string& metric) {
  return metric.find("accuracy") != std::string::npos ||
         metric.find("exact_match") != std::string::npos;
}

// A value as a person reads it: ×100 for a metric shown in percent.
inline double shown_value(const std::string& metric, double value) {
  return shown_in_percent(metric) ? 100 * value : value;
}

// An axis or column title: "accuracy (%)", "loss".
inline std::string metric_label(const std::string& metric) {
  return shown_in_percent(metric) ? metric + " (%)" : metric;
}

// Mean ± sample standard deviation over seeds, "—" when nothing was
// measured: percentages to 2 decimals, byte counts whole, the rest to 4
// significant digits.
inline std::string format_spread(const std::string& metric, const Spread& value) {
  if (value.count == 0) return "—";
  if (metric.find("bytes") != std::string::npos) return fmt::format("{:.0f}", value.mean);
  if (shown_in_percent(metric)) {
    return value.count > 1 ? fmt::format("{:.2f} ± {:.2f}", 100 * value.mean, 100 * value.std)
                           : fmt::format("{:.2f}", 100 * value.mean);
  }
  return value.count > 1 ? fmt::format("{:.4g} ± {:.2g}", value.mean, value.std)
                         : fmt::format("{:.4g}", value.mean);
}

}  // namespace lorafed
