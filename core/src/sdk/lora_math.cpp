#include "lorafed/lora_math.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed {

LoraFactors balanced_factors(const TruncatedSvd& svd, std::int64_t rank, double scale,
                             std::uint64_t seed, double zero_tolerance) {
  if (!(scale > 0)) throw Error("balanced_factors needs a positive scale");
  const std::int64_t rows = svd.u.size(0);
  const std::int64_t cols = svd.v.size(0);
  const std::int64_t available = std::min(rank, svd.s.size(0));
  const at::Tensor sigma = svd.s.narrow(0, 0, available);
  const double largest = available > 0 ? sigma.max().item<double>() : 0.0;
  const at::Tensor live =
      sigma > std::max(largest * zero_tolerance, 0.0);  // directions worth keeping
  const at::Tensor root = at::sqrt(sigma * live) / std::sqrt(scale);

  at::Tensor b = at::zeros({rows, rank}, at::kFloat);
  at::Tensor a = at::zeros({rank, cols}, at::kFloat);
  b.narrow(1, 0, available).copy_(svd.u.narrow(1, 0, available) * root);
  a.narrow(0, 0, available).copy_(root.unsqueeze(1) * svd.v.narrow(1, 0, available).t());

  // Dead directions (and ranks beyond the matrix's) restart as LoRA does:
  // B column zero, A row Kaiming-uniform, so the product is unchanged.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(cols));
  const at::Tensor live_cpu = live.to(at::kBool);
  for (std::int64_t j = 0; j < rank; ++j) {
    if (j < available && live_cpu[j].item<bool>()) continue;
    a[j].uniform_(-bound, bound, generator);
  }
  return LoraFactors{std::move(a), std::move(b)};
}

at::Tensor stacked_product(std::span<const WeightedFactors> terms) {
  if (terms.empty()) throw Error("stacked_product needs at least one term");
  std::vector<at::Tensor> bs;
  std::vector<at::Tensor> as;
  for (const WeightedFactors& term : terms) {
    bs.push_back(term.factors->b * term.weight);
    as.push_back(term.factors->a);
  }
  return at::matmul(at::cat(bs, 1), at::cat(as, 0));
}

std::vector<double> normalise_weights(std::span<const double> weights) {
  double total = 0;
  for (double weight : weights) {
    if (!std::isfinite(weight) || weight < 0) {
      throw Error("aggregation weight " + std::to_string(weight) + " is negative or not finite");
    }
    total += weight;
  }
  std::vector<double> normalised(weights.size());
  for (std::size_t i = 0; i < weights.size(); ++i) {
    normalised[i] = total > 0 ? weights[i] / total : 1.0 / static_cast<double>(weights.size());
  }
  return normalised;
}

}  // namespace lorafed
