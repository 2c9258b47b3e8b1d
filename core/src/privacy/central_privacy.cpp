#include "src/privacy/central_privacy.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "src/privacy/update_clipping.hpp"

namespace lorafed {
namespace {

constexpr const char* kRdpState = "privacy.rdp";
constexpr const char* kClipState = "privacy.clip_norm";

// The weights must be what PrivateAggregation promises: the sensitivity
// (and so the noise) is computed from them.
void check_weights(const std::vector<double>& p, std::size_t instructed) {
  if (p.size() != instructed) {
    throw Error("strategy gave " + std::to_string(p.size()) + " update weights for " +
                std::to_string(instructed) + " instructed clients");
  }
  double sum = 0;
  for (double weight : p) {
    if (!std::isfinite(weight) || weight < 0) throw Error("strategy gave an invalid update weight");
    sum += weight;
  }
  if (std::abs(sum - 1) > 1e-6) throw Error("strategy's update weights do not sum to 1");
}

}  // namespace

PrivateAggregation& private_aggregation(Strategy& strategy, const std::string& strategy_name) {
  auto* aggregation = dynamic_cast<PrivateAggregation*>(&strategy);
  if (aggregation == nullptr || strategy.personalised()) {
    throw ConfigError("[privacy]: strategy '" + strategy_name +
                      "' cannot be made differentially private: " +
                      (strategy.personalised()
                           ? "it is personalised, and every client's own model is evaluated on "
                             "its data"
                           : "its server does not sum clipped client updates") +
                      " (docs/privacy.md lists the strategies that can)");
  }
  aggregation->check_private_configuration();
  return *aggregation;
}

CentralPrivacy::CentralPrivacy(std::shared_ptr<Strategy> inner, const PrivacyConfig& config,
                               const std::string& strategy_name)
    : StrategyDecorator(std::move(inner)),
      aggregation_(&private_aggregation(this->inner(), strategy_name)),
      config_(config),
      noise_seed_(config.noise_seed.value_or(secret_seed())),
      clip_norm_(config.clip_norm) {}

void CentralPrivacy::initialize(const StrategyContext& context) {
  if (context.num_clients <= 0) {
    throw ConfigError(
        "[privacy] mode = \"central\" needs the number of clients, for the sample rate");
  }
  population_ = context.num_clients;
  clip_norm_ = config_.clip_norm;
  accountant_ = RdpAccountant();
  instructed_.clear();
  inner().initialize(context);
}

std::vector<FitInstruction> CentralPrivacy::configure_fit(int round,
                                                          std::span<const ClientInfo> clients) {
  instructed_ = inner().configure_fit(round, clients);
  return instructed_;
}

Metrics CentralPrivacy::aggregate_fit(int round, std::span<const FitResult> results,
                                      std::span<const Failure>) {
  if (results.empty() || instructed_.empty()) return {};
  const auto m = static_cast<double>(instructed_.size());
  const std::vector<double> p = aggregation_->update_weights(round, instructed_);
  check_weights(p, instructed_.size());
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < instructed_.size(); ++i) index[instructed_[i].client_id] = i;

  // A client that returned nothing counts as a zero update: unclipped.
  const double clip = clip_norm_;
  double unclipped = m - static_cast<double>(results.size());
  NamedTensors sum;
  for (const FitResult& result : results) {
    const auto found = index.find(result.client_id);
    if (found == index.end()) throw Error("a result from uninstructed client " + result.client_id);
    const NamedTensors update = aggregation_->client_update(instructed_[found->second], result);
    const double norm = update_norm(update);
    if (norm <= clip) unclipped += 1;
    add_scaled(sum, update, p[found->second] * clip_factor(norm, clip));
  }

  // The count of unclipped updates is released too; with σ_b for it, the
  // update's multiplier z_Δ keeps the pair's RDP that of one Gaussian with z.
  double z_update = config_.noise_multiplier;
  double count_stddev = 0;
  if (config_.adaptive_clipping) {
    count_stddev = config_.count_noise_stddev > 0 ? config_.count_noise_stddev
                                                  : std::max(m / 20, config_.noise_multiplier);
    const double z = config_.noise_multiplier;
    z_update = 1 / std::sqrt(1 / (z * z) - 1 / (4 * count_stddev * count_stddev));
  }
  const double stddev = z_update * clip * *std::max_element(p.begin(), p.end());
  at::Generator generator =
      noise_generator(derive_seed(noise_seed_, {static_cast<std::uint64_t>(round)}));
  add_gaussian_noise(sum, stddev, generator);

  Metrics metrics = aggregation_->apply_update(round, instructed_, sum);
  if (config_.adaptive_clipping) {
    const double noisy_count =
        unclipped + count_stddev * at::randn({1}, generator, at::kDouble).item<double>();
    const double unclipped_fraction = noisy_count / m;
    clip_norm_ *=
        std::exp(-config_.clip_learning_rate * (unclipped_fraction - config_.target_quantile));
    metrics["privacy_unclipped_fraction"] = unclipped_fraction;
  }
  const double q = std::min(1.0, m / static_cast<double>(std::max<std::int64_t>(population_, 1)));
  accountant_.add(q, config_.noise_multiplier);
  metrics["privacy_epsilon"] = accountant_.epsilon(config_.delta);
  metrics["privacy_delta"] = config_.delta;
  metrics["privacy_clip_norm"] = clip;
  metrics["privacy_noise_stddev"] = stddev;
  metrics["privacy_sample_rate"] = q;
  instructed_.clear();
  return metrics;
}

NamedTensors CentralPrivacy::state() const {
  NamedTensors state = inner().state();
  const std::vector<double>& rdp = accountant_.rdp();
  state[kRdpState] =
      at::tensor(at::ArrayRef<double>(rdp.data(), rdp.size()), at::TensorOptions(at::kDouble));
  state[kClipState] = at::tensor({clip_norm_}, at::TensorOptions(at::kDouble));
  return state;
}

void CentralPrivacy::load_state(const NamedTensors& state) {
  NamedTensors strategy_state;
  at::Tensor rdp, clip;
  for (const auto& [name, tensor] : state) {
    if (name == kRdpState) {
      rdp = tensor;
    } else if (name == kClipState) {
      clip = tensor;
    } else {
      strategy_state.emplace(name, tensor);
    }
  }
  if (!rdp.defined() || !clip.defined()) {
    throw FormatError("checkpoint has no privacy accountant state (" + std::string(kRdpState) +
                      ", " + kClipState + "): it was not made with [privacy] mode = \"central\"");
  }
  if (clip.numel() != 1 || rdp.dim() != 1) throw FormatError("privacy state has the wrong shape");
  const double clip_norm = clip.to(at::kDouble).item<double>();
  if (!std::isfinite(clip_norm) || clip_norm <= 0)
    throw FormatError("privacy clip norm is invalid");
  const at::Tensor values = rdp.to(at::kDouble).contiguous();
  accountant_.restore(
      std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + values.numel()));
  clip_norm_ = clip_norm;
  inner().load_state(strategy_state);
}

}  // namespace lorafed
