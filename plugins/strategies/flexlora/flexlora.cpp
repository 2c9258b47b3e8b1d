// FlexLoRA: ΔW = Σ p_i s_i B_i A_i, each client gets ΔW truncated to its
// rank (docs/algorithms.md §FlexLoRA). The baseline whose truncation bias
// FedHL removes.
#include <ATen/ATen.h>

#include "../fedprox/proximal_procedure.hpp"
#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/private_aggregation.hpp"
#include "lorafed/truncating_strategy.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

class FlexLora final : public TruncatingStrategy, public PrivateAggregation {
 public:
  FlexLora(TruncatingStrategy::Options options, ExampleWeighting weighting)
      : TruncatingStrategy(std::move(options)), weighting_(weighting) {}

  // ΔW_{t+1} = Σ p_i s_i B_i' A_i' (stacked sum), p ∝ examples.
  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    if (results.empty()) return {};
    const std::vector<double> p = example_weights(results, weighting_);
    NamedTensors next;
    for (const TargetLayer& layer : context().spec.targets) {
      std::vector<WeightedFactors> terms;
      for (std::size_t i = 0; i < results.size(); ++i) {
        terms.push_back(WeightedFactors{&results[i].adapter.layers.at(layer.name),
                                        p[i] * results[i].adapter.scale()});
      }
      next[layer.name] = stacked_product(terms);
    }
    global().set_weights(std::move(next));
    return {};
  }

  // Differential privacy (docs/algorithms.md §Differential privacy):
  // ΔW_{t+1} = Σ p_i W_{r_i,t} + Σ p_i clip(ΔW_i) + noise, where
  // ΔW_i = s B_i'A_i' − W_{r_i,t}; the first sum is of what was sent.
  void check_private_configuration() const override {
    refuse_data_weights(weighting_ == ExampleWeighting::kData,
                        "set weighting = \"uniform\" (the default is \"data\")");
    refuse_client_evaluation(evaluates_clients());
  }
  std::vector<double> update_weights(int,
                                     std::span<const FitInstruction> instructed) const override {
    return std::vector<double>(instructed.size(), 1.0 / static_cast<double>(instructed.size()));
  }
  NamedTensors client_update(const FitInstruction& instruction,
                             const FitResult& result) const override {
    return product_change(instruction, result);
  }
  Metrics apply_update(int round, std::span<const FitInstruction> instructed,
                       const NamedTensors& update) override {
    const std::vector<double> p = update_weights(round, instructed);
    NamedTensors next;
    for (const TargetLayer& layer : context().spec.targets) {
      std::vector<WeightedFactors> terms;
      for (std::size_t i = 0; i < instructed.size(); ++i) {
        terms.push_back(WeightedFactors{&instructed[i].adapter.layers.at(layer.name),
                                        p[i] * instructed[i].adapter.scale()});
      }
      next[layer.name] = stacked_product(terms) + update.at(layer.name);
    }
    global().set_weights(std::move(next));
    return {};
  }

 private:
  ExampleWeighting weighting_;
};

class FlexLoraFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    fedprox::read_mu(config, "proximal_mu", 0.0);  // checked wherever the configuration is
    return std::make_unique<FlexLora>(TruncatingStrategy::read_options(config, ".delta"),
                                      read_example_weighting(config));
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

LORAFED_STRATEGY_PLUGIN("flexlora", "0.1.0", FlexLoraFactory)
