// FedHL: unbiased aggregation against the full-rank global product, weights
// inversely proportional to truncation error (docs/algorithms.md §FedHL).
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>

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
      std::vector<double> raw;
      for (const FitResult& result : results) raw.push_back(raw_weight(result, layer.name));
      const std::vector<double> p = normalise_weights(raw);
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
    std::vector<double> raw;
    for (const FitInstruction& instruction : instructed) {
      raw.push_back(raw_weight(instruction.adapter.rank(), 0, ""));
    }
    return normalise_weights(raw);
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
  double raw_weight(const FitResult& result, const std::string& layer) const {
    return raw_weight(result.adapter.rank(), result.num_examples, layer);
  }
  double raw_weight(std::int64_t rank, std::int64_t num_examples, const std::string& layer) const {
    switch (options_.weighting) {
      case Weighting::kData:
        return static_cast<double>(num_examples);
      case Weighting::kUniform:
        return 1.0;
      case Weighting::kTruncation: {
        // §FedHL steps 3–4: p_i ∝ 1 / (r̂_i² + ε).
        const double error =
            global().truncation_error(rank, options_.per_layer_errors ? layer : "");
        return 1.0 / (error * error + options_.epsilon);
      }
    }
    return 1.0;
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
    options.epsilon = config.get<double>("epsilon", options.epsilon);
    if (!(options.epsilon > 0)) throw_config_error(config, "epsilon", "must be positive");
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
