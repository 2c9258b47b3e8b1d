#include "src/statistics.hpp"

#include <cmath>

namespace lorafed {

Spread spread(const std::vector<double>& values) {
  Spread result;
  result.count = values.size();
  if (values.empty()) return result;
  for (const double value : values) result.mean += value;
  result.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double squares = 0;
    for (const double value : values) squares += (value - result.mean) * (value - result.mean);
    result.std = std::sqrt(squares / static_cast<double>(values.size() - 1));
  }
  return result;
}

bool lower_is_better(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric.find("error") != std::string::npos ||
         metric.find("perplexity") != std::string::npos;
}

}  // namespace lorafed
