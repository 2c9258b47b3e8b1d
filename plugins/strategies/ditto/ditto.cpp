// Ditto for LoRA (docs/algorithms.md §Ditto): FedAvg on a global adapter,
// and on every client a personal adapter trained with a proximal pull
// towards the global one, kept between rounds and evaluated on the client's
// own test split.
#include <cmath>
#include <optional>

#include "../fedavg/fedavg_strategy.hpp"
#include "../fedprox/proximal_procedure.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/proximal_term.hpp"
#include "lorafed/seed.hpp"

namespace {

using namespace lorafed;

struct DittoOptions {
  double lambda = 0.1;
  std::int64_t personal_epochs = 0;  // 0: [train] local_epochs
};

// Both halves are made wherever either is: the server checks the keys too.
DittoOptions read_options(const ConfigTable& config) {
  DittoOptions options;
  options.lambda = fedprox::read_mu(config, "lambda", options.lambda);
  options.personal_epochs = config.get<std::int64_t>("personal_epochs", options.personal_epochs);
  if (options.personal_epochs < 0 || options.personal_epochs > 1'000'000) {
    throw_config_error(config, "personal_epochs",
                       "must be in [0, 1000000], got " + std::to_string(options.personal_epochs));
  }
  return options;
}

// One per client: it keeps the client's personal adapter v_i.
class DittoProcedure final : public LoraTrainingProcedure {
 public:
  explicit DittoProcedure(DittoOptions options) : options_(options) {}

  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    // The global half: FedAvg's local training of w from w_t.
    FitOutcome outcome = LoraTrainingProcedure::fit(model, instruction, context);

    // The personal half: v_i, from where it was left (from w_t the first
    // time), pulled towards w_t by λ/2 ‖v − w_t‖².
    model.install_adapter(personal_.value_or(instruction.adapter));
    TrainOptions personal = context.train;
    personal.hook = proximal_term(options_.lambda, to_named_tensors(instruction.adapter));
    if (options_.personal_epochs > 0) {
      personal.local_epochs = options_.personal_epochs;
      personal.local_steps = 0;
    }
    const TrainReport report = model.train(ParameterGroup::kAdapter, personal,
                                           derive_seed(context.seed, {0x44495454 /* "DITT" */}));
    personal_ = model.adapter();
    outcome.metrics["personal_train_loss"] = report.mean_loss;
    return outcome;
  }

  // The client's own model: its personal adapter, or the global one sent
  // while it has none (it has not trained yet).
  EvaluateOutcome evaluate(ModelBackend& model, const EvaluateInstruction& instruction,
                           const ClientContext& context) override {
    if (!personal_) return LoraTrainingProcedure::evaluate(model, instruction, context);
    return LoraTrainingProcedure::evaluate(
        model, EvaluateInstruction{instruction.client_id, *personal_, instruction.config}, context);
  }

  // v_i, for a client whose procedure lives only while it works.
  NamedTensors client_state() const override {
    return personal_ ? adapter_state(*personal_) : NamedTensors{};
  }
  void load_client_state(const NamedTensors& state) override {
    personal_.reset();
    if (!state.empty()) personal_ = adapter_from_state(state);
  }

 private:
  DittoOptions options_;
  std::optional<Adapter> personal_;
};

class DittoFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    read_options(config);
    return fedavg::make_strategy(config, "ditto", fedavg::ClientEvaluation::kPersonal);
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    return std::make_unique<DittoProcedure>(read_options(config));
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("ditto", "0.1.0", DittoFactory)
