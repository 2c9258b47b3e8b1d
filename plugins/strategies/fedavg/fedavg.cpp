// FedAvg / FedIT: average A and B separately (docs/algorithms.md §FedAvg).
#include <ATen/ATen.h>

#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

class FedAvg final : public Strategy {
 public:
  explicit FedAvg(ExampleWeighting weighting) : weighting_(weighting) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    for (const ClientInfo& client : clients) {
      if (client.rank != clients.front().rank) {
        throw ConfigError(
            "strategy fedavg needs one LoRA rank for every client, but " + clients.front().id +
            " has rank " + std::to_string(clients.front().rank) + " and " + client.id + " rank " +
            std::to_string(client.rank) +
            ": set one [lora] rank, or use a heterogeneous-rank strategy (fedhl, flexlora, "
            "hetlora, flora)");
      }
    }
    if (global_.layers.empty() && !clients.empty()) {
      global_ = init_adapter(context_.spec, clients.front().rank, context_.alpha, context_.seed);
    }
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) {
      if (client.rank != global_.rank()) {
        throw ConfigError("strategy fedavg: client " + client.id + " has rank " +
                          std::to_string(client.rank) + " but the global adapter has rank " +
                          std::to_string(global_.rank()));
      }
      instructions.push_back(FitInstruction{client.id, global_, {}});
    }
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    const std::vector<double> p = example_weights(results, weighting_);
    Adapter next;
    next.alpha = global_.alpha;
    for (const auto& [name, factors] : global_.layers) {
      at::Tensor a = at::zeros_like(factors.a);
      at::Tensor b = at::zeros_like(factors.b);
      for (std::size_t i = 0; i < results.size(); ++i) {
        const LoraFactors& trained = results[i].adapter.layers.at(name);
        a.add_(trained.a, p[i]);
        b.add_(trained.b, p[i]);
      }
      next.layers.emplace(name, LoraFactors{std::move(a), std::move(b)});
    }
    // A new adapter rather than an update in place: instructions already sent
    // may still share the old tensors' storage.
    global_ = std::move(next);
    return {};
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
  StrategyContext context_;
  Adapter global_;
};

class FedAvgFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<FedAvg>(read_example_weighting(config));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedavg", "0.1.0", FedAvgFactory)
