#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lorafed/private_aggregation.hpp"
#include "lorafed/strategy.hpp"
#include "src/privacy/privacy_config.hpp"
#include "src/privacy/rdp_accountant.hpp"
#include "src/privacy/strategy_decorator.hpp"

namespace lorafed {

// Central differential privacy around a strategy that implements
// PrivateAggregation (docs/algorithms.md §Differential privacy): each
// client's update is clipped to C, the weighted sum gets Gaussian noise of
// standard deviation z · C · max_i p_i, and an RDP accountant reports
// (ε, δ) after every round as the metrics privacy_epsilon and
// privacy_delta. With adaptive clipping C follows the target quantile of
// the update norms (Andrew et al. 2021), its count noised too.
class CentralPrivacy final : public StrategyDecorator {
 public:
  // Throws ConfigError when `inner` does not implement PrivateAggregation,
  // is personalised, or its configuration is not private.
  CentralPrivacy(std::shared_ptr<Strategy> inner, const PrivacyConfig& config,
                 const std::string& strategy_name);

  // The live clients the next round's sample is drawn from: the sample
  // rate is m / population. Defaults to [federation] num_clients.
  void set_population(std::int64_t population) { population_ = population; }

  void initialize(const StrategyContext& context) override;
  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override;
  Metrics aggregate_fit(int round, std::span<const FitResult> results,
                        std::span<const Failure> failures) override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;

  double clip_norm() const { return clip_norm_; }

 private:
  PrivateAggregation* aggregation_;  // inner() seen as PrivateAggregation
  PrivacyConfig config_;
  std::uint64_t noise_seed_;
  std::int64_t population_ = 0;
  double clip_norm_;
  RdpAccountant accountant_;
  std::vector<FitInstruction> instructed_;  // this round's, until aggregated
};

// The PrivateAggregation side of `strategy`, after checking the
// configuration is private (ConfigError otherwise); shared by both modes.
PrivateAggregation& private_aggregation(Strategy& strategy, const std::string& strategy_name);

}  // namespace lorafed
