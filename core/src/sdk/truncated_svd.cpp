#include "lorafed/truncated_svd.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

TruncatedSvd exact(const at::Tensor& matrix, std::int64_t rank) {
  auto [u, s, vh] = at::linalg_svd(matrix, /*full_matrices=*/false);
  return TruncatedSvd{u.narrow(1, 0, rank).contiguous(), s.narrow(0, 0, rank).contiguous(),
                      vh.narrow(0, 0, rank).t().contiguous()};
}

at::Tensor orthonormal_basis(const at::Tensor& columns) {
  return std::get<0>(at::linalg_qr(columns, "reduced"));
}

// Halko, Martinsson & Tropp (2011), Algorithm 4.4 with Algorithm 5.1.
TruncatedSvd randomized(const at::Tensor& matrix, std::int64_t rank,
                        const RandomizedSvdOptions& options) {
  const std::int64_t rows = matrix.size(0);
  const std::int64_t cols = matrix.size(1);
  const std::int64_t sketch = std::min(std::min(rows, cols), rank + options.oversampling);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const at::Tensor omega = at::empty({cols, sketch}, matrix.options()).normal_(0.0, 1.0, generator);
  at::Tensor q = orthonormal_basis(at::matmul(matrix, omega));
  for (std::int64_t i = 0; i < options.power_iterations; ++i) {
    // Re-orthonormalising between products keeps small singular values from
    // drowning in rounding error.
    const at::Tensor z = orthonormal_basis(at::matmul(matrix.t(), q));
    q = orthonormal_basis(at::matmul(matrix, z));
  }
  const at::Tensor small = at::matmul(q.t(), matrix);  // sketch × cols
  auto [u_small, s, vh] = at::linalg_svd(small, /*full_matrices=*/false);
  return TruncatedSvd{at::matmul(q, u_small.narrow(1, 0, rank)).contiguous(),
                      s.narrow(0, 0, rank).contiguous(), vh.narrow(0, 0, rank).t().contiguous()};
}

}  // namespace

at::Tensor TruncatedSvd::reconstruct(std::int64_t rank) const {
  const std::int64_t k = rank < 0 ? s.size(0) : std::min(rank, s.size(0));
  return at::matmul(u.narrow(1, 0, k) * s.narrow(0, 0, k), v.narrow(1, 0, k).t());
}

TruncatedSvd truncated_svd(const at::Tensor& matrix, std::int64_t rank, SvdMethod method,
                           const RandomizedSvdOptions& options) {
  if (matrix.dim() != 2) throw Error("truncated_svd needs a matrix");
  if (rank < 1) throw Error("truncated_svd needs rank ≥ 1, got " + std::to_string(rank));
  const std::int64_t k = std::min({rank, matrix.size(0), matrix.size(1)});
  const at::Tensor input = matrix.to(at::kFloat).contiguous();
  if (method == SvdMethod::kRandomized &&
      k + options.oversampling < std::min(matrix.size(0), matrix.size(1))) {
    return randomized(input, k, options);
  }
  return exact(input, k);
}

}  // namespace lorafed
