#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/truncated_svd.hpp"

namespace lorafed {

// A dense global product per target layer (out × in) and its truncated SVD,
// computed once per layer at the largest rank asked for and reused for every
// smaller rank (truncations are nested). What FedHL (W_t) and FlexLoRA (ΔW)
// keep on the server (docs/algorithms.md §Truncated SVD, §Balanced split).
class LORAFED_API TruncatedGlobal {
 public:
  struct Options {
    SvdMethod method = SvdMethod::kExact;
    RandomizedSvdOptions randomized;
  };

  TruncatedGlobal() = default;
  TruncatedGlobal(const ModelSpec& spec, Options options);

  const NamedTensors& weights() const { return weights_; }
  // Replaces the product (new tensors; never updated in place, since sent
  // instructions may share storage). Drops the cached truncation.
  void set_weights(NamedTensors weights);

  // The product as a strategy's state: "<layer><suffix>" per layer, and back
  // (FormatError naming the missing or misshapen tensor).
  NamedTensors state(const std::string& suffix) const;
  void load_state(const NamedTensors& state, const std::string& suffix);

  // Makes sure a truncation of at least `rank` is cached; `seed` seeds the
  // randomized method.
  void truncate(std::int64_t rank, std::uint64_t seed);
  std::int64_t truncated_rank() const;
  const TruncatedSvd& svd(const std::string& layer) const;

  // Balanced factors of every layer's rank-`rank` truncation at scale
  // alpha / rank; directions with no mass are freshly initialised.
  Adapter adapter_at(std::int64_t rank, double alpha, std::uint64_t seed) const;

  // What a strategy sends a client: truncates at the largest rank among
  // `sampled` (once per layer), then adapter_at(rank). `seed` should be
  // derived from the round.
  Adapter adapter_for(std::span<const ClientInfo> sampled, std::int64_t rank, double alpha,
                      std::uint64_t seed);

  // ||W − W_rank||_F² (= Σ_{j>rank} σ_j²) for the truncation sent, summed
  // over layers, or for one layer when `layer` is not empty; accurate also
  // when small next to ||W||_F² (docs/algorithms.md §Truncated SVD). A rank
  // above the truncated one counts as the truncated one.
  double truncation_error(std::int64_t rank, const std::string& layer = "") const;

 private:
  Options options_;
  NamedTensors weights_;
  std::map<std::string, TruncatedSvd> truncations_;
  // Per layer, [r] = ||W − W_r||_F² for r = 0 … the truncated rank.
  std::map<std::string, std::vector<double>> truncation_errors_;
};

}  // namespace lorafed
