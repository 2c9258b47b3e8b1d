#include "lorafed/truncated_global.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/seed.hpp"

namespace lorafed {

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
  squared_norms_.clear();
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
  squared_norms_.clear();
  RandomizedSvdOptions randomized = options_.randomized;
  randomized.seed = seed;
  for (const auto& [name, w] : weights_) {
    truncations_[name] = truncated_svd(w, rank, options_.method, randomized);
    squared_norms_[name] = w.square().sum().item<double>();
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
  for (const auto& [name, svd] : truncations_) {
    if (!layer.empty() && name != layer) continue;
    const std::int64_t kept_rank = std::min(rank, svd.s.size(0));
    const double kept = svd.s.narrow(0, 0, kept_rank).square().sum().item<double>();
    error += std::max(0.0, squared_norms_.at(name) - kept);
  }
  return error;
}

}  // namespace lorafed
