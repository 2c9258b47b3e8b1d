// Out-of-line anchors of the SDK's interfaces, and their default behaviour.
#include <ATen/ATen.h>

#include "lorafed/client_procedure.hpp"
#include "lorafed/error.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/private_aggregation.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed {

ModelBackend::~ModelBackend() = default;
Strategy::~Strategy() = default;
PrivateAggregation::~PrivateAggregation() = default;
ClientProcedure::~ClientProcedure() = default;
LoraTrainingProcedure::~LoraTrainingProcedure() = default;
PluginFactory::~PluginFactory() = default;
StrategyFactory::~StrategyFactory() = default;
ModelFactory::~ModelFactory() = default;
TransportFactory::~TransportFactory() = default;

std::string TransportFactory::write_key_pair(const std::string&) const {
  throw ConfigError("this transport authenticates no one: it has no keys to make");
}

NamedTensors ClientProcedure::client_state() const {
  return {};
}

void ClientProcedure::load_client_state(const NamedTensors& state) {
  if (state.empty()) return;
  throw Error("this strategy's client procedure keeps no state between rounds, but was given '" +
              state.begin()->first + "'");
}

void refuse_data_weights(bool data_weighted, const std::string& instead) {
  if (!data_weighted) return;
  throw ConfigError(
      "[privacy]: [strategy] weighting = \"data\" weighs clients by their example "
      "counts, which are private: " +
      instead);
}

void refuse_client_evaluation(bool evaluate_clients) {
  if (!evaluate_clients) return;
  throw ConfigError(
      "[privacy]: [strategy] evaluate_clients = true reports metrics of the "
      "clients' data that the privacy accountant does not cover");
}

bool Strategy::personalised() const {
  return false;
}

NamedTensors ModelBackend::local_parameters() const {
  return {};
}

void ModelBackend::load_local_parameters(const NamedTensors& parameters) {
  if (parameters.empty()) return;
  throw Error("model '" + spec().model_id + "' has no local parameters to load (got '" +
              parameters.begin()->first + "'); use a model that lists shared_parameters");
}

NamedTensors ModelBackend::client_state() const {
  return local_parameters();
}

void ModelBackend::load_client_state(const NamedTensors& state) {
  load_local_parameters(state);
}

std::optional<HfBaseModel> ModelBackend::write_hf_base(const std::filesystem::path&) const {
  return std::nullopt;
}

std::vector<EvaluateInstruction> Strategy::configure_evaluate(int, std::span<const ClientInfo>) {
  return {};
}

Metrics Strategy::aggregate_evaluate(int, std::span<const EvaluateResult> results,
                                     std::span<const Failure>) {
  Metrics averaged;
  double total_examples = 0;
  for (const EvaluateResult& result : results)
    total_examples += static_cast<double>(result.num_examples);
  if (total_examples == 0) return averaged;
  for (const EvaluateResult& result : results) {
    const double weight = static_cast<double>(result.num_examples) / total_examples;
    averaged["loss"] += weight * result.loss;
    for (const auto& [name, value] : result.metrics) averaged[name] += weight * value;
  }
  return averaged;
}

FitOutcome LoraTrainingProcedure::fit(ModelBackend& model, const FitInstruction& instruction,
                                      const ClientContext& context) {
  if (!instruction.merge.layers.empty()) model.merge_adapter(instruction.merge);
  model.install_adapter(instruction.adapter);
  const TrainReport report = model.train(ParameterGroup::kAdapter, context.train, context.seed);
  FitOutcome outcome;
  outcome.adapter = model.adapter();
  outcome.num_examples = model.num_train_examples();
  outcome.metrics = {{"train_loss", report.mean_loss},
                     {"steps", static_cast<double>(report.steps)},
                     {"examples_seen", static_cast<double>(report.examples_seen)}};
  if (report.flops > 0) outcome.metrics["train_flops"] = report.flops;
  return outcome;
}

EvaluateOutcome LoraTrainingProcedure::evaluate(ModelBackend& model,
                                                const EvaluateInstruction& instruction,
                                                const ClientContext&) {
  model.install_adapter(instruction.adapter);
  const EvalReport report = model.evaluate();
  return EvaluateOutcome{report.num_examples, report.loss, report.metrics};
}

}  // namespace lorafed
