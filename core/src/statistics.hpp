#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lorafed {

// Mean and sample standard deviation (n − 1; 0 for a single value) of
// repeated measurements, such as one metric over seeds.
struct Spread {
  double mean = 0;
  double std = 0;
  std::size_t count = 0;
};

Spread spread(const std::vector<double>& values);

// Whether a smaller value of this metric is better: names containing "loss",
// "error" or "perplexity" (loss, global_error, relative_error, perplexity),
// not accuracy and the like.
bool lower_is_better(const std::string& metric);

}  // namespace lorafed
