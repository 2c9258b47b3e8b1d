#include "lorafed/truncated_global.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/seed.hpp"

namespace lorafed {
namespace {

// ||W − W̃_r||_F² for r = 0…k, W̃_r the leading r triplets of `svd`
// (docs/algorithms.md §Truncated SVD, truncation error): computed from the
// residual, in double, never as ||W||² − Σ_{j≤r} σ_j², which cancels away
// every digit when the error is small next to ||W||².
//
// With R_r = W − W̃_r, R_j = R_{j+1} + s_j u_j v_jᵀ, so
//   ||R_j||² = ||R_{j+1}||² + 2 s_j u_jᵀ R_{j+1} v_j + s_j² ||u_j||² ||v_j||²,
//   u_jᵀ R_{j+1} v_j = (Uᵀ R_k V)_jj + Σ_{j<i<k} s_i (UᵀU)_ji (VᵀV)_ij,
// three products of W's size in all.
std::vector<double> truncation_errors(const at::Tensor& w, const TruncatedSvd& svd) {
  const at::Tensor u = svd.u.to(at::kDouble);
  const at::Tensor v = svd.v.to(at::kDouble);
  const at::Tensor s = svd.s.to(at::kDouble);
  const at::Tensor residual = w.to(at::kDouble) - at::matmul(u * s, v.t());
  const at::Tensor projected = at::matmul(at::matmul(u.t(), residual), v);
  const at::Tensor u_gram = at::matmul(u.t(), u);
  const at::Tensor v_gram = at::matmul(v.t(), v);
  const auto sigma = s.accessor<double, 1>();
  const auto along_k = projected.accessor<double, 2>();
  const auto uu = u_gram.accessor<double, 2>();
  const auto vv = v_gram.accessor<double, 2>();
  const std::int64_t k = s.size(0);
  std::vector<double> errors(static_cast<std::size_t>(k) + 1);
  errors[k] = at::dot(residual.view(-1), residual.view(-1)).item<double>();
  for (std::int64_t j = k - 1; j >= 0; --j) {
    double along = along_k[j][j];  // u_jᵀ R_{j+1} v_j
    for (std::int64_t i = j + 1; i < k; ++i) along += sigma[i] * uu[j][i] * vv[i][j];
    errors[j] = errors[j + 1] + 2 * sigma[j] * along + sigma[j] * sigma[j] * uu[j][j] * vv[j][j];
  }
  return errors;
}

}  // namespace

TruncatedGlobal::TruncatedGlobal(const ModelSpec& spec, Options options) : options_(options) {
  for (const TargetLayer& layer : spec.targets) {
    weights_[layer.name] = at::zeros({layer.out_features, layer.in_features}, at::kFloat);
  }
}

void TruncatedGlobal::set_weights(NamedTensors weights) {
  for (const auto& [name, w] : weights_) {
    const auto found = weights.find(name);
    if (found == weights.end()) throw Error("global product lacks layer '" + name + "'");
    if (found->second.sizes() != w.sizes())
      throw Error("global product of layer '" + name + "' has the wrong shape");
  }
  weights_ = std::move(weights);
  truncations_.clear();
  truncation_errors_.clear();
}

NamedTensors TruncatedGlobal::state(const std::string& suffix) const {
  NamedTensors state;
  for (const auto& [name, w] : weights_) state[name + suffix] = w;
  return state;
}

void TruncatedGlobal::load_state(const NamedTensors& state, const std::string& suffix) {
  NamedTensors weights;
  for (const auto& [name, w] : weights_) {
    const auto found = state.find(name + suffix);
    if (found == state.end()) throw FormatError("strategy state lacks '" + name + suffix + "'");
    if (found->second.sizes() != w.sizes()) {
      throw FormatError("strategy state '" + name + suffix + "' has the wrong shape");
    }
    weights[name] = found->second.to(at::kFloat).contiguous();
  }
  set_weights(std::move(weights));
}

void TruncatedGlobal::truncate(std::int64_t rank, std::uint64_t seed) {
  if (truncated_rank() >= rank) return;
  truncations_.clear();
  truncation_errors_.clear();
  RandomizedSvdOptions randomized = options_.randomized;
  randomized.seed = seed;
  for (const auto& [name, w] : weights_) {
    const TruncatedSvd& svd = truncations_[name] =
        truncated_svd(w, rank, options_.method, randomized);
    truncation_errors_[name] = truncation_errors(w, svd);
  }
}

std::int64_t TruncatedGlobal::truncated_rank() const {
  if (truncations_.empty()) return 0;
  // A matrix smaller than the rank asked for is truncated at its full rank,
  // which serves every larger request too.
  const auto& [name, svd] = *truncations_.begin();
  const at::Tensor& w = weights_.at(name);
  return svd.s.size(0) >= std::min(w.size(0), w.size(1)) ? INT64_MAX : svd.s.size(0);
}

const TruncatedSvd& TruncatedGlobal::svd(const std::string& layer) const {
  const auto found = truncations_.find(layer);
  if (found == truncations_.end())
    throw Error("no truncation of layer '" + layer + "': call truncate() first");
  return found->second;
}

Adapter TruncatedGlobal::adapter_at(std::int64_t rank, double alpha, std::uint64_t seed) const {
  if (truncated_rank() < rank)
    throw Error("adapter_at(" + std::to_string(rank) + ") above the truncated rank");
  Adapter adapter;
  adapter.alpha = alpha;
  std::uint64_t layer_index = 0;
  for (const auto& [name, svd] : truncations_) {
    adapter.layers[name] =
        balanced_factors(svd, rank, alpha / static_cast<double>(rank),
                         derive_seed(seed, {layer_index++, static_cast<std::uint64_t>(rank)}));
  }
  return adapter;
}

Adapter TruncatedGlobal::adapter_for(std::span<const ClientInfo> sampled, std::int64_t rank,
                                     double alpha, std::uint64_t seed) {
  std::int64_t max_rank = rank;
  for (const ClientInfo& client : sampled) max_rank = std::max(max_rank, client.rank);
  truncate(max_rank, seed);
  return adapter_at(rank, alpha, seed);
}

double TruncatedGlobal::truncation_error(std::int64_t rank, const std::string& layer) const {
  double error = 0;
  for (const auto& [name, tails] : truncation_errors_) {
    if (!layer.empty() && name != layer) continue;
    // A rank beyond what is known is the largest known one (as truncate() would send).
    const auto known = static_cast<std::int64_t>(tails.size()) - 1;
    error += tails[static_cast<std::size_t>(std::clamp<std::int64_t>(rank, 0, known))];
  }
  return error;
}

}  // namespace lorafed
