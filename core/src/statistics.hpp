#pragma once

#include <cstddef>
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

}  // namespace lorafed
