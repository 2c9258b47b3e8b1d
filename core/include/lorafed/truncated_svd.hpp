#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "lorafed/export.hpp"

namespace lorafed {

// M ≈ U diag(S) Vᵀ with the `rank` largest singular values
// (docs/algorithms.md §Truncated SVD).
struct LORAFED_API TruncatedSvd {
  at::Tensor u;  // rows × rank, orthonormal columns
  at::Tensor s;  // rank, descending, ≥ 0
  at::Tensor v;  // cols × rank, orthonormal columns

  // U diag(S) Vᵀ using only the leading `rank` triplets (all when -1).
  at::Tensor reconstruct(std::int64_t rank = -1) const;
};

enum class SvdMethod {
  kExact,       // LAPACK (gesdd through LibTorch), then truncated
  kRandomized,  // Halko–Martinsson–Tropp subspace iteration
};

struct RandomizedSvdOptions {
  std::int64_t oversampling = 10;
  std::int64_t power_iterations = 2;
  std::uint64_t seed = 0;
};

// Rank is clipped to min(rows, cols). The randomized method's truncation
// error ||M − M_k||_F is within 1% of the exact one on matrices whose
// spectrum decays (tested), and it costs O(rows · cols · (rank + p)) instead
// of O(rows · cols · min(rows, cols)).
LORAFED_API TruncatedSvd truncated_svd(const at::Tensor& matrix, std::int64_t rank,
                                       SvdMethod method = SvdMethod::kExact,
                                       const RandomizedSvdOptions& options = {});

}  // namespace lorafed
