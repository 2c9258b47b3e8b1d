#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/export.hpp"
#include "lorafed/truncated_svd.hpp"

namespace lorafed {

// Balanced factors of a truncation (docs/algorithms.md §Balanced split):
// B = U_r Σ_r^½ / √scale, A = Σ_r^½ V_rᵀ / √scale, so scale·B·A equals the
// truncation. A direction whose singular value is at most
// `zero_tolerance · σ_max` (or exactly zero) gets a zero B column and a
// freshly Kaiming-initialised A row, so that it can still learn.
LORAFED_API LoraFactors balanced_factors(const TruncatedSvd& svd, std::int64_t rank, double scale,
                                         std::uint64_t seed, double zero_tolerance = 1e-6);

// One client's factors for the stacked sum.
struct WeightedFactors {
  const LoraFactors* factors;
  double weight;  // p_i · s_i
};

// Σ_i weight_i · B_i A_i as one GEMM of the stacked factors
// [w_1 B_1 … w_n B_n] · [A_1; …; A_n] (docs/algorithms.md §Stacked sum).
LORAFED_API at::Tensor stacked_product(std::span<const WeightedFactors> terms);

// Normalises non-negative weights to sum to 1; all-zero (or empty of
// positive mass) becomes uniform. Throws on a negative or non-finite weight.
LORAFED_API std::vector<double> normalise_weights(std::span<const double> weights);

}  // namespace lorafed
