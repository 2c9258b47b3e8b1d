// FedHL: unbiased aggregation against the full-rank global product, weights
// inversely proportional to truncation error (docs/algorithms.md §FedHL).
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "../fedprox/proximal_procedure.hpp"
#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/private_aggregation.hpp"
#include "lorafed/truncating_strategy.hpp"

namespace {

using namespace lorafed;

enum class Weighting { kTruncation, kData, kUniform };

struct FedHlOptions {
  Weighting weighting = Weighting::kTruncation;
  // 1e-8 makes the weights one-hot on the highest-rank clients (docs/algorithms.md §FedHL).
  double epsilon = 1e-3;
  // ε in units of the round's mean squared error, r̄² (docs/algorithms.md §FedHL, "ε").
  bool relative_epsilon = false;
  bool per_layer_errors = false;
};

class FedHl final : public TruncatingStrategy, public PrivateAggregation {
 public:
  FedHl(TruncatingStrategy::Options base, FedHlOptions options)
      : TruncatingStrategy(std::move(base)), options_(options) {}

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    if (results.empty()) return {};
    Metrics metrics;
    NamedTensors next;
    for (const TargetLayer& layer : context().spec.targets) {
      // §FedHL step 4: p_i over the clients that returned.
      std::vector<std::int64_t> ranks;
      std::vector<std::int64_t> examples;
      for (const FitResult& result : results) {
        ranks.push_back(result.adapter.rank());
        examples.push_back(result.num_examples);
      }
      const std::vector<double> p = client_weights(ranks, examples, layer.name);
      // §FedHL step 6: W_{t+1} = W_t + Σ p_i s_i B_i' A_i' − Σ p_i W_{r_i,t}.
      std::vector<WeightedFactors> terms;
      for (std::size_t i = 0; i < results.size(); ++i) {
        terms.push_back(WeightedFactors{&results[i].adapter.layers.at(layer.name),
                                        p[i] * results[i].adapter.scale()});
      }
      // Σ p_i W_{r_i,t} = U diag(σ ⊙ c) Vᵀ with c_j = Σ_{i: r_i ≥ j} p_i.
      const TruncatedSvd& svd = global().svd(layer.name);
      at::Tensor coverage = at::zeros_like(svd.s);
      for (std::size_t i = 0; i < results.size(); ++i) {
        coverage.narrow(0, 0, std::min(results[i].adapter.rank(), svd.s.size(0))).add_(p[i]);
      }
      const at::Tensor started_from = at::matmul(svd.u * (svd.s * coverage), svd.v.t());
      next[layer.name] = global().weights().at(layer.name) + stacked_product(terms) - started_from;
      if (layer.name == context().spec.targets.front().name) {
        metrics["weight_min"] = *std::min_element(p.begin(), p.end());
        metrics["weight_max"] = *std::max_element(p.begin(), p.end());
        // Per client, for `lorafed report` (docs/outputs.md): its weight on the first layer.
        for (std::size_t i = 0; i < results.size(); ++i) {
          metrics["weight/" + results[i].client_id] = p[i];
        }
      }
    }
    double error_sum = 0;
    for (const FitResult& result : results) {
      const double error = global().truncation_error(result.adapter.rank());
      metrics["truncation_error/" + result.client_id] = error;
      error_sum += error;
    }
    metrics["truncation_error_mean"] = error_sum / static_cast<double>(results.size());
    global().set_weights(std::move(next));
    return metrics;
  }

  // Differential privacy (docs/algorithms.md §Differential privacy): u_i is
  // ΔW_i = s B_i'A_i' − W_{r_i,t}, and W_{t+1} = W_t + Σ p_i clip(ΔW_i) + noise,
  // which is step 6 with the sum over the instructed clients. The weights
  // depend on ranks and W_t only, both public.
  void check_private_configuration() const override {
    refuse_data_weights(options_.weighting == Weighting::kData,
                        "use \"truncation\" (the default) or \"uniform\"");
    if (options_.per_layer_errors) {
      throw ConfigError(
          "[privacy]: [strategy] truncation_error = \"layer\" gives a client one "
          "weight per layer; clipping bounds a client's whole update with one weight");
    }
    refuse_client_evaluation(evaluates_clients());
  }
  std::vector<double> update_weights(int,
                                     std::span<const FitInstruction> instructed) const override {
    std::vector<std::int64_t> ranks;
    for (const FitInstruction& instruction : instructed)
      ranks.push_back(instruction.adapter.rank());
    return client_weights(ranks, std::vector<std::int64_t>(ranks.size(), 0), "");
  }
  NamedTensors client_update(const FitInstruction& instruction,
                             const FitResult& result) const override {
    return product_change(instruction, result);
  }
  Metrics apply_update(int, std::span<const FitInstruction> instructed,
                       const NamedTensors& update) override {
    NamedTensors next;
    for (const auto& [name, weights] : global().weights()) next[name] = weights + update.at(name);
    const std::vector<double> p = update_weights(0, instructed);
    Metrics metrics;
    metrics["weight_min"] = *std::min_element(p.begin(), p.end());
    metrics["weight_max"] = *std::max_element(p.begin(), p.end());
    global().set_weights(std::move(next));
    return metrics;
  }

 private:
  // §FedHL step 4, normalised: p_i ∝ 1 / (r̂_i² + ε) (relative: ε r̄², r̄
  // the mean r̂ of these clients; uniform while every r̂ is 0), or the
  // ablations' n_i or 1.
  std::vector<double> client_weights(const std::vector<std::int64_t>& ranks,
                                     const std::vector<std::int64_t>& examples,
                                     const std::string& layer) const {
    std::vector<double> raw;
    switch (options_.weighting) {
      case Weighting::kData:
        for (std::int64_t n : examples) raw.push_back(static_cast<double>(n));
        break;
      case Weighting::kUniform:
        raw.assign(ranks.size(), 1.0);
        break;
      case Weighting::kTruncation: {
        std::vector<double> errors;
        double mean = 0;
        for (std::int64_t rank : ranks) {
          errors.push_back(global().truncation_error(rank, options_.per_layer_errors ? layer : ""));
          mean += errors.back() / static_cast<double>(ranks.size());
        }
        double epsilon = options_.epsilon;
        if (options_.relative_epsilon) {
          if (!(mean > 0)) return normalise_weights(std::vector<double>(ranks.size(), 1.0));
          epsilon *= mean * mean;
        }
        for (double error : errors) raw.push_back(1.0 / (error * error + epsilon));
        break;
      }
    }
    return normalise_weights(raw);
  }

  FedHlOptions options_;
};

class FedHlFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    fedprox::read_mu(config, "proximal_mu", 0.0);  // checked wherever the configuration is
    FedHlOptions options;
    const std::string weighting = config.get<std::string>("weighting", "truncation");
    if (weighting == "truncation")
      options.weighting = Weighting::kTruncation;
    else if (weighting == "data")
      options.weighting = Weighting::kData;
    else if (weighting == "uniform")
      options.weighting = Weighting::kUniform;
    else
      throw_config_error(
          config, "weighting",
          "must be \"truncation\", \"data\" or \"uniform\", got \"" + weighting + "\"");
    const std::string scale = config.get<std::string>("epsilon_scale", "absolute");
    if (scale != "absolute" && scale != "relative") {
      throw_config_error(
          config, "epsilon_scale",
          "must be \"absolute\" (the paper's ε) or \"relative\" (ε r̄²), got \"" + scale + "\"");
    }
    options.relative_epsilon = scale == "relative";
    options.epsilon = config.get<double>("epsilon", options.relative_epsilon ? 1.0 : 1e-3);
    if (!(options.epsilon > 0) || !std::isfinite(options.epsilon))
      throw_config_error(config, "epsilon", "must be positive and finite");
    const std::string errors = config.get<std::string>("truncation_error", "model");
    if (errors != "model" && errors != "layer") {
      throw_config_error(config, "truncation_error",
                         "must be \"model\" (summed over layers) or \"layer\"");
    }
    options.per_layer_errors = errors == "layer";
    return std::make_unique<FedHl>(TruncatingStrategy::read_options(config, ".global"), options);
  }
  // FedProx's term at the client's own rank, anchored at the truncation it
  // was sent (docs/algorithms.md §FedProx); 0, the default, is plain LoRA
  // training.
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    return fedprox::make_procedure(fedprox::read_mu(config, "proximal_mu", 0.0));
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedhl", "0.1.0", FedHlFactory)
