// FedAvg / FedIT: average A and B separately (docs/algorithms.md §FedAvg).
#include "fedavg_strategy.hpp"

#include <ATen/ATen.h>

#include "lorafed/averaging.hpp"
#include "lorafed/error.hpp"
#include "lorafed/personalised_strategy.hpp"
#include "lorafed/private_aggregation.hpp"
#include "lorafed/weighting.hpp"

namespace lorafed::fedavg {
namespace {

class FedAvg final : public Strategy, public PrivateAggregation {
 public:
  FedAvg(std::string name, ExampleWeighting weighting, bool evaluate_clients,
         bool mean_over_clients)
      : name_(std::move(name)),
        weighting_(weighting),
        evaluate_clients_(evaluate_clients),
        mean_over_clients_(mean_over_clients) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    return instruct_with_global_adapter(global_, clients, context_, name_);
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

  Metrics aggregate_evaluate(int round, std::span<const EvaluateResult> results,
                             std::span<const Failure> failures) override {
    if (mean_over_clients_) return mean_over_clients(results);
    return Strategy::aggregate_evaluate(round, results, failures);
  }

  NamedTensors global_delta() const override {
    return global_.layers.empty() ? NamedTensors{} : global_.dense_delta();
  }

  // Differential privacy in factor space: u_i = (A_i' − A, B_i' − B)
  // (docs/algorithms.md §Differential privacy).
  void check_private_configuration() const override {
    if (mean_over_clients_) {
      throw ConfigError("[privacy]: " + name_ +
                        " evaluates every client's personal model on the client's data each "
                        "round, which the privacy accountant does not cover");
    }
    refuse_client_evaluation(evaluate_clients_);
    refuse_data_weights(weighting_ == ExampleWeighting::kData,
                        "set weighting = \"uniform\" (the default is \"data\")");
  }
  std::vector<double> update_weights(int,
                                     std::span<const FitInstruction> instructed) const override {
    return std::vector<double>(instructed.size(), 1.0 / static_cast<double>(instructed.size()));
  }
  NamedTensors client_update(const FitInstruction& instruction,
                             const FitResult& result) const override {
    NamedTensors update = to_named_tensors(result.adapter);
    for (const auto& [name, sent] : to_named_tensors(instruction.adapter)) {
      const auto found = update.find(name);
      if (found == update.end()) throw FormatError(result.client_id + ": no '" + name + "'");
      found->second = found->second - sent;
    }
    return update;
  }
  Metrics apply_update(int, std::span<const FitInstruction>, const NamedTensors& update) override {
    NamedTensors next = to_named_tensors(global_);
    for (auto& [name, tensor] : next) tensor = tensor + update.at(name);
    global_ = adapter_from_named_tensors(next, global_.alpha);
    return {};
  }

  NamedTensors state() const override { return to_named_tensors(global_); }
  void load_state(const NamedTensors& state) override {
    global_ = adapter_from_named_tensors(state, context_.alpha);
  }

 private:
  std::string name_;
  ExampleWeighting weighting_;
  bool evaluate_clients_;
  bool mean_over_clients_;
  StrategyContext context_;
  Adapter global_;
};

}  // namespace

std::unique_ptr<Strategy> make_strategy(const ConfigTable& config, std::string name,
                                        ClientEvaluation evaluation) {
  const bool personal = evaluation == ClientEvaluation::kPersonal;
  return std::make_unique<FedAvg>(std::move(name), read_example_weighting(config),
                                  personal || config.get<bool>("evaluate_clients", false),
                                  personal);
}

}  // namespace lorafed::fedavg
