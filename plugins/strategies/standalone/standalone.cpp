// Standalone: every client trains its own model on its own data and nothing
// is shared, the lower bound personalised FL must beat (docs/algorithms.md
// §Standalone).
#include <ATen/ATen.h>

#include "lorafed/personalised_strategy.hpp"
#include "lorafed/plugin.hpp"

namespace {

using namespace lorafed;

class Standalone final : public PersonalisedStrategy {
 public:
  void initialize(const StrategyContext&) override {}

  // Each sampled client is told to train; it is sent no tensor.
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients) instructions.push_back({client.id, Adapter{}, {}});
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult>, std::span<const Failure>) override {
    return {};
  }

  NamedTensors state() const override { return {}; }
  void load_state(const NamedTensors&) override {}
};

class StandaloneProcedure final : public PersonalisedProcedure {
 public:
  FitOutcome fit(ModelBackend& model, const FitInstruction&,
                 const ClientContext& context) override {
    const TrainReport report = model.train(ParameterGroup::kLocal, context.train, context.seed);
    FitOutcome outcome;  // an empty adapter: nothing goes back
    outcome.num_examples = model.num_train_examples();
    outcome.metrics = {
        {"train_loss", report.mean_loss},
        {"train_flops", report.flops},
        {"local_parameters", static_cast<double>(total_elements(model.local_parameters()))}};
    return outcome;
  }
};

class StandaloneFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable&) const override {
    return std::make_unique<Standalone>();
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<StandaloneProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("standalone", "0.1.0", StandaloneFactory)
