#include "src/privacy/local_privacy.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "src/privacy/central_privacy.hpp"
#include "src/privacy/rdp_accountant.hpp"
#include "src/privacy/update_clipping.hpp"

namespace lorafed {
namespace {

constexpr std::string_view kReleasesPrefix = "privacy.releases.";

}  // namespace

LocalPrivacyProcedure::LocalPrivacyProcedure(std::shared_ptr<ClientProcedure> inner,
                                             const PrivacyConfig& config)
    : inner_(std::move(inner)), config_(config) {}

FitOutcome LocalPrivacyProcedure::fit(ModelBackend& model, const FitInstruction& instruction,
                                      const ClientContext& context) {
  FitOutcome outcome = inner_->fit(model, instruction, context);
  if (!outcome.control.layers.empty() || !outcome.parameters.empty()) {
    throw ConfigError(
        "[privacy] mode = \"local\" protects the adapter only, and this strategy's clients also "
        "return " +
        std::string(outcome.control.layers.empty() ? "model parameters" : "control variates"));
  }
  outcome.num_examples = 0;
  outcome.metrics.clear();
  if (outcome.adapter.layers.empty()) return outcome;

  // u = returned − sent (the whole adapter when nothing was sent).
  const NamedTensors returned = to_named_tensors(outcome.adapter);
  const NamedTensors sent = to_named_tensors(instruction.adapter);
  NamedTensors update;
  for (const auto& [name, tensor] : returned) {
    const auto found = sent.find(name);
    if (!sent.empty() && (found == sent.end() || !found->second.sizes().equals(tensor.sizes()))) {
      throw Error("[privacy] mode = \"local\": the trained adapter's '" + name +
                  "' does not match the one sent");
    }
    update.emplace(name, sent.empty() ? tensor.clone() : tensor - found->second);
  }
  const double factor = clip_factor(update_norm(update), config_.clip_norm);
  for (auto& [name, tensor] : update) tensor.mul_(factor);
  const std::uint64_t seed =
      config_.noise_seed
          ? derive_seed(*config_.noise_seed, {static_cast<std::uint64_t>(context.client_index),
                                              static_cast<std::uint64_t>(context.round)})
          : secret_seed();
  at::Generator generator = noise_generator(seed);
  add_gaussian_noise(update, config_.noise_multiplier * config_.clip_norm, generator);
  NamedTensors noisy;
  for (auto& [name, tensor] : update) {
    noisy.emplace(name, sent.empty() ? tensor : sent.at(name) + tensor);
  }
  outcome.adapter = adapter_from_named_tensors(noisy, outcome.adapter.alpha);
  return outcome;
}

EvaluateOutcome LocalPrivacyProcedure::evaluate(ModelBackend& model,
                                                const EvaluateInstruction& instruction,
                                                const ClientContext& context) {
  return inner_->evaluate(model, instruction, context);
}

LocalPrivacyAccounting::LocalPrivacyAccounting(std::shared_ptr<Strategy> inner,
                                               const PrivacyConfig& config,
                                               const std::string& strategy_name)
    : StrategyDecorator(std::move(inner)), config_(config) {
  private_aggregation(this->inner(), strategy_name);
}

void LocalPrivacyAccounting::initialize(const StrategyContext& context) {
  releases_.clear();
  inner().initialize(context);
}

Metrics LocalPrivacyAccounting::aggregate_fit(int round, std::span<const FitResult> results,
                                              std::span<const Failure> failures) {
  Metrics metrics = inner().aggregate_fit(round, results, failures);
  for (const FitResult& result : results) ++releases_[result.client_id];
  metrics["privacy_epsilon"] = epsilon();
  metrics["privacy_delta"] = config_.delta;
  metrics["privacy_clip_norm"] = config_.clip_norm;
  metrics["privacy_noise_stddev"] = config_.noise_multiplier * config_.clip_norm;
  return metrics;
}

// k Gaussian releases with multiplier z: RDP k·α/(2z²) at each order.
double LocalPrivacyAccounting::epsilon() const {
  std::int64_t most = 0;
  for (const auto& [id, count] : releases_) most = std::max(most, count);
  if (most == 0) return 0;
  RdpAccountant accountant;
  for (std::int64_t k = 0; k < most; ++k) accountant.add(1.0, config_.noise_multiplier);
  return accountant.epsilon(config_.delta);
}

NamedTensors LocalPrivacyAccounting::state() const {
  NamedTensors state = inner().state();
  for (const auto& [id, count] : releases_) {
    state[std::string(kReleasesPrefix) + id] = at::tensor({count}, at::TensorOptions(at::kLong));
  }
  return state;
}

void LocalPrivacyAccounting::load_state(const NamedTensors& state) {
  NamedTensors strategy_state;
  std::map<std::string, std::int64_t> releases;
  for (const auto& [name, tensor] : state) {
    if (!name.starts_with(kReleasesPrefix)) {
      strategy_state.emplace(name, tensor);
      continue;
    }
    if (tensor.numel() != 1) throw FormatError("privacy state '" + name + "' is not a count");
    const std::int64_t count = tensor.to(at::kLong).item<std::int64_t>();
    if (count < 0) throw FormatError("privacy state '" + name + "' is negative");
    releases[name.substr(kReleasesPrefix.size())] = count;
  }
  inner().load_state(strategy_state);
  releases_ = std::move(releases);
}

}  // namespace lorafed
