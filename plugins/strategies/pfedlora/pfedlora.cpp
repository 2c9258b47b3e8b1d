// pFedLoRA: heterogeneous local models share one homogeneous low-rank
// adapter, trained in alternating phases and averaged on the server
// (docs/algorithms.md §pFedLoRA).
#include <ATen/ATen.h>

#include "lorafed/averaging.hpp"
#include "lorafed/personalised_strategy.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/seed.hpp"
#include "lorafed/weighting.hpp"
#include "phase_options.hpp"

namespace {

using namespace lorafed;

class PFedLoRA final : public PersonalisedStrategy {
 public:
  explicit PFedLoRA(ExampleWeighting weighting) : weighting_(weighting) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    return instruct_with_global_adapter(global_, clients, context_, "pfedlora");
  }

  // The global adapter is the weighted average of the clients' adapters,
  // each factor separately (as FedAvg; only the adapter is shared).
  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    global_ = average_adapters(results, example_weights(results, weighting_));
    return {};
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

// The client half: phase 1 trains the local model with the adapter frozen,
// phase 2 the adapter with the local model frozen; or both jointly when
// `alternate = false` (the ablation).
class PFedLoRAProcedure final : public PersonalisedProcedure {
 public:
  PFedLoRAProcedure(bool alternate, pfedlora::PhaseOptions local, pfedlora::PhaseOptions adapter)
      : alternate_(alternate), local_(local), adapter_(adapter) {}

  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    model.install_adapter(instruction.adapter);
    FitOutcome outcome;
    double flops = 0;
    if (alternate_) {
      const TrainReport local = model.train(ParameterGroup::kLocal, local_.apply(context.train),
                                            derive_seed(context.seed, {1}));
      const TrainReport adapter = model.train(
          ParameterGroup::kAdapter, adapter_.apply(context.train), derive_seed(context.seed, {2}));
      outcome.metrics["local_loss"] = local.mean_loss;
      outcome.metrics["adapter_loss"] = adapter.mean_loss;
      outcome.metrics["local_steps"] = static_cast<double>(local.steps);
      outcome.metrics["adapter_steps"] = static_cast<double>(adapter.steps);
      outcome.metrics["train_loss"] = adapter.mean_loss;
      flops = local.flops + adapter.flops;
    } else {
      const TrainReport joint = model.train(ParameterGroup::kAll, local_.apply(context.train),
                                            derive_seed(context.seed, {1}));
      outcome.metrics["train_loss"] = joint.mean_loss;
      flops = joint.flops;
    }
    outcome.adapter = model.adapter();
    outcome.num_examples = model.num_train_examples();
    outcome.metrics["train_flops"] = flops;
    outcome.metrics["local_parameters"] =
        static_cast<double>(total_elements(model.local_parameters()));
    return outcome;
  }

 private:
  bool alternate_;
  pfedlora::PhaseOptions local_;
  pfedlora::PhaseOptions adapter_;
};

class PFedLoRAFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    read_procedure_keys(config);  // the server reads the whole table, so typos are caught there too
    return std::make_unique<PFedLoRA>(read_example_weighting(config));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    read_example_weighting(config);
    return read_procedure_keys(config);
  }

 private:
  static std::unique_ptr<PFedLoRAProcedure> read_procedure_keys(const ConfigTable& config) {
    return std::make_unique<PFedLoRAProcedure>(config.get<bool>("alternate", true),
                                               pfedlora::PhaseOptions::read(config, "local"),
                                               pfedlora::PhaseOptions::read(config, "adapter"));
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("pfedlora", "0.1.0", PFedLoRAFactory)
