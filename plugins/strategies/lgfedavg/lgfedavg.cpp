// LG-FedAvg: clients keep their own representation layers and share the
// parameters every model has in the same shape (the classifier head), which
// the server averages (docs/algorithms.md §LG-FedAvg).
#include <ATen/ATen.h>

#include "lorafed/averaging.hpp"
#include "lorafed/error.hpp"
#include "lorafed/personalised_strategy.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/weighting.hpp"

namespace {

using namespace lorafed;

class LgFedAvg final : public PersonalisedStrategy {
 public:
  explicit LgFedAvg(ExampleWeighting weighting) : weighting_(weighting) {}

  void initialize(const StrategyContext& context) override {
    if (context.spec.shared_parameters.empty()) {
      throw ConfigError("strategy lgfedavg: model '" + context.spec.model_id +
                        "' lists no shared parameters, so there is nothing to average; use a "
                        "model with a common head (cnnzoo)");
    }
    global_.clear();
  }

  // Round 1 sends nothing (clients start from their own heads); later rounds
  // send the averaged shared parameters.
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) {
      instructions.push_back(FitInstruction{client.id, Adapter{}, {}, Adapter{}, global_});
    }
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    global_ = average_parameters(results, example_weights(results, weighting_));
    return {};
  }

  NamedTensors state() const override { return global_; }
  void load_state(const NamedTensors& state) override { global_ = state; }

 private:
  ExampleWeighting weighting_;
  NamedTensors global_;
};

class LgFedAvgProcedure final : public PersonalisedProcedure {
 public:
  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    model.load_local_parameters(instruction.parameters);
    const TrainReport report = model.train(ParameterGroup::kLocal, context.train, context.seed);
    const NamedTensors local = model.local_parameters();
    FitOutcome outcome;
    for (const SharedParameter& shared : model.spec().shared_parameters) {
      outcome.parameters.emplace(shared.name, local.at(shared.name));
    }
    outcome.num_examples = model.num_train_examples();
    outcome.metrics = {{"train_loss", report.mean_loss},
                       {"train_flops", report.flops},
                       {"local_parameters", static_cast<double>(total_elements(local))}};
    return outcome;
  }
};

class LgFedAvgFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<LgFedAvg>(read_example_weighting(config));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    read_example_weighting(config);
    return std::make_unique<LgFedAvgProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("lgfedavg", "0.1.0", LgFedAvgFactory)
