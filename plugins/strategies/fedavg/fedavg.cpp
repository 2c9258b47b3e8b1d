// FedAvg / FedIT: average A and B separately (docs/algorithms.md §FedAvg).
#include <ATen/ATen.h>

#include "lorafed/averaging.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

class FedAvg final : public Strategy {
 public:
  FedAvg(ExampleWeighting weighting, bool evaluate_clients)
      : weighting_(weighting), evaluate_clients_(evaluate_clients) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    return instruct_with_global_adapter(global_, clients, context_, "fedavg");
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    const std::vector<double> p = example_weights(results, weighting_);
    Adapter next = average_adapters(results, p);
    // A new adapter rather than an update in place: instructions already sent
    // may still share the old tensors' storage.
    global_ = std::move(next);
    return {};
  }

  // Every client's model is the global one: evaluated on each client's own test split.
  std::vector<EvaluateInstruction> configure_evaluate(
      int, std::span<const ClientInfo> clients) override {
    if (!evaluate_clients_) return {};
    std::vector<EvaluateInstruction> instructions;
    for (const ClientInfo& client : clients) {
      instructions.push_back(EvaluateInstruction{client.id, global_, {}});
    }
    return instructions;
  }

  NamedTensors global_delta() const override {
    return global_.layers.empty() ? NamedTensors{} : global_.dense_delta();
  }

  NamedTensors state() const override { return to_named_tensors(global_); }
  void load_state(const NamedTensors& state) override {
    global_ = adapter_from_named_tensors(state, context_.alpha);
  }

 private:
  ExampleWeighting weighting_;
  bool evaluate_clients_;
  StrategyContext context_;
  Adapter global_;
};

class FedAvgFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<FedAvg>(read_example_weighting(config),
                                    config.get<bool>("evaluate_clients", false));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedavg", "0.1.0", FedAvgFactory)
