// FlexLoRA: ΔW = Σ p_i s_i B_i A_i, each client gets ΔW truncated to its
// rank (docs/algorithms.md §FlexLoRA). The baseline whose truncation bias
// FedHL removes.
#include <ATen/ATen.h>

#include <algorithm>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/seed.hpp"
#include "lorafed/truncated_global.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

struct FlexLoraOptions {
  ExampleWeighting weighting = ExampleWeighting::kData;
  TruncatedGlobal::Options svd;
  bool evaluate_clients = false;
};

class FlexLora final : public Strategy {
 public:
  explicit FlexLora(FlexLoraOptions options) : options_(options) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = TruncatedGlobal(context.spec, options_.svd);  // ΔW = 0: clients start as LoRA does
  }

  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) {
      instructions.push_back(
          FitInstruction{client.id, client_adapter(round, clients, client.rank), {}});
    }
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    if (results.empty()) return {};
    const std::vector<double> p = example_weights(results, options_.weighting);
    NamedTensors next;
    for (const TargetLayer& layer : context_.spec.targets) {
      std::vector<WeightedFactors> terms;
      for (std::size_t i = 0; i < results.size(); ++i) {
        terms.push_back(WeightedFactors{&results[i].adapter.layers.at(layer.name),
                                        p[i] * results[i].adapter.scale()});
      }
      next[layer.name] = stacked_product(terms);
    }
    global_.set_weights(std::move(next));
    return {};
  }

  std::vector<EvaluateInstruction> configure_evaluate(
      int round, std::span<const ClientInfo> clients) override {
    if (!options_.evaluate_clients) return {};
    std::vector<EvaluateInstruction> instructions;
    for (const ClientInfo& client : clients) {
      instructions.push_back(
          EvaluateInstruction{client.id, client_adapter(round + 1, clients, client.rank), {}});
    }
    return instructions;
  }

  NamedTensors global_delta() const override { return global_.weights(); }

  NamedTensors state() const override { return global_.state(".delta"); }
  void load_state(const NamedTensors& state) override { global_.load_state(state, ".delta"); }

 private:
  Adapter client_adapter(int round, std::span<const ClientInfo> clients, std::int64_t rank) {
    return global_.adapter_for(clients, rank, context_.alpha,
                               derive_seed(context_.seed, {static_cast<std::uint64_t>(round)}));
  }

  FlexLoraOptions options_;
  StrategyContext context_;
  TruncatedGlobal global_;  // ΔW per layer
};

class FlexLoraFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    FlexLoraOptions options;
    options.weighting = read_example_weighting(config);
    const std::string svd = config.get<std::string>("svd", "exact");
    if (svd != "exact" && svd != "randomized") {
      throw_config_error(config, "svd", "must be \"exact\" or \"randomized\", got \"" + svd + "\"");
    }
    options.svd.method = svd == "exact" ? SvdMethod::kExact : SvdMethod::kRandomized;
    options.evaluate_clients = config.get<bool>("evaluate_clients", false);
    return std::make_unique<FlexLora>(options);
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("flexlora", "0.1.0", FlexLoraFactory)
