#pragma once

#include <span>
#include <vector>

#include "lorafed/config.hpp"
#include "lorafed/export.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed {

// How a strategy weighs the clients that returned (docs/algorithms.md §Weights).
enum class ExampleWeighting {
  kData,     // p_i ∝ n_i
  kUniform,  // p_i = 1/m
};

// Reads `weighting` ("data", the default, or "uniform") from a [strategy] table.
LORAFED_API ExampleWeighting read_example_weighting(const ConfigTable& config);

// Normalised weights of `results` (uniform when every client reports 0 examples).
LORAFED_API std::vector<double> example_weights(std::span<const FitResult> results,
                                                ExampleWeighting weighting);

}  // namespace lorafed
