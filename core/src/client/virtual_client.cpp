#include "src/client/virtual_client.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed {

VirtualClient::VirtualClient(Options options, std::shared_ptr<ModelBackend> model,
                             std::shared_ptr<ClientProcedure> procedure)
    : options_(std::move(options)),
      model_(std::move(model)),
      procedure_(std::move(procedure)),
      spec_(model_->spec()),
      num_train_examples_(model_->num_train_examples()) {}

VirtualClient::VirtualClient(Options options, ModelMaker make_model,
                             std::shared_ptr<ClientStateStore> states,
                             ProcedureMaker make_procedure)
    : options_(std::move(options)),
      make_model_(std::move(make_model)),
      make_procedure_(std::move(make_procedure)),
      states_(std::move(states)) {
  const std::shared_ptr<ModelBackend> model = make_model_();
  spec_ = model->spec();
  num_train_examples_ = model->num_train_examples();
}

wire::Envelope VirtualClient::registration() const {
  return wire::Envelope{0,
                        options_.id,
                        wire::kServerId,
                        wire::RegisterBody{options_.rank, spec_.model_id, num_train_examples_},
                        {}};
}

namespace {

// What an on-demand client keeps between instructions: its backend's state
// ("model." names), the adapter installed in it ("adapter." names and its
// alpha), which a personalised procedure evaluates as it trained it, and
// its procedure's state ("procedure." names).
constexpr std::string_view kModelPrefix = "model.";
constexpr std::string_view kAdapterPrefix = "adapter.";
constexpr std::string_view kProcedurePrefix = "procedure.";
constexpr const char* kAdapterAlpha = "adapter_alpha";

NamedTensors state_of(const ModelBackend& model, const ClientProcedure& procedure) {
  NamedTensors state;
  for (auto& [name, tensor] : procedure.client_state()) {
    state.emplace(std::string(kProcedurePrefix) + name, tensor);
  }
  for (auto& [name, tensor] : model.client_state()) {
    state.emplace(std::string(kModelPrefix) + name, tensor);
  }
  const Adapter adapter = model.adapter();
  if (!adapter.layers.empty()) {
    for (auto& [name, tensor] : to_named_tensors(adapter)) {
      state.emplace(std::string(kAdapterPrefix) + name, tensor);
    }
    state.emplace(kAdapterAlpha, at::scalar_tensor(adapter.alpha, at::kDouble));
  }
  return state;
}

void restore(ModelBackend& model, ClientProcedure& procedure, const NamedTensors& state) {
  NamedTensors own, factors, carried;
  for (const auto& [name, tensor] : state) {
    if (name.starts_with(kModelPrefix)) own.emplace(name.substr(kModelPrefix.size()), tensor);
    if (name.starts_with(kAdapterPrefix))
      factors.emplace(name.substr(kAdapterPrefix.size()), tensor);
    if (name.starts_with(kProcedurePrefix))
      carried.emplace(name.substr(kProcedurePrefix.size()), tensor);
  }
  procedure.load_client_state(carried);
  model.load_client_state(own);
  if (!factors.empty()) {
    model.install_adapter(
        adapter_from_named_tensors(factors, state.at(kAdapterAlpha).item<double>()));
  }
}

}  // namespace

wire::Envelope VirtualClient::handle(const wire::Envelope& instruction) {
  std::lock_guard lock(busy_);
  ClientContext context;
  context.client_id = options_.id;
  context.client_index = options_.index;
  context.rank = options_.rank;
  context.round = static_cast<int>(instruction.round);
  context.seed =
      derive_seed(options_.seed, {static_cast<std::uint64_t>(options_.index), instruction.round});
  context.train = options_.train;
  try {
    const bool fits = std::holds_alternative<wire::FitInsBody>(instruction.body);
    if (!fits && !std::holds_alternative<wire::EvaluateInsBody>(instruction.body)) {
      throw Error(std::string("cannot handle ") + wire::body_name(instruction.body));
    }
    // Resident, or made for this instruction with the client's state loaded.
    std::shared_ptr<ModelBackend> model = model_;
    std::shared_ptr<ClientProcedure> procedure = procedure_;
    if (!model_) {
      model = make_model_();
      procedure = make_procedure_();
      if (std::optional<NamedTensors> state = states_->get(options_.index)) {
        restore(*model, *procedure, *state);
      }
    }
    wire::Envelope reply = fits ? fit(*model, *procedure, instruction, context)
                                : evaluate(*model, *procedure, instruction, context);
    if (!model_) states_->put(options_.index, state_of(*model, *procedure));
    return reply;
  } catch (const std::exception& error) {
    spdlog::error("{}: round {}: {}", options_.id, instruction.round, error.what());
    return wire::Envelope{instruction.round,
                          options_.id,
                          wire::kServerId,
                          wire::ErrorBody{wire::ErrorCode::kClientFailure, error.what()},
                          {}};
  }
}

wire::Envelope VirtualClient::fit(ModelBackend& model, ClientProcedure& procedure,
                                  const wire::Envelope& instruction, const ClientContext& context) {
  const auto& body = std::get<wire::FitInsBody>(instruction.body);
  NamedTensors own = instruction.tensors;
  NamedTensors merge = wire::take_prefixed(own, wire::kMergePrefix);
  NamedTensors parameters = wire::take_prefixed(own, wire::kParameterPrefix);
  const NamedTensors control = wire::take_prefixed(own, wire::kControlPrefix);
  FitInstruction fit_instruction{options_.id, adapter_from_named_tensors(own, body.alpha),
                                 body.config};
  validate_adapter(fit_instruction.adapter, spec_, options_.rank);
  if (!merge.empty()) {
    fit_instruction.merge = adapter_from_named_tensors(merge, body.merge_alpha);
    // A product to merge may have any rank (FLoRA's stack grows with the clients).
    validate_adapter(fit_instruction.merge, spec_, INT64_MAX);
  }
  validate_shared_parameters(parameters, spec_);
  fit_instruction.parameters = std::move(parameters);
  if (!control.empty()) {
    fit_instruction.control = adapter_from_named_tensors(control, body.alpha);
    validate_adapter(fit_instruction.control, spec_, options_.rank);
    require_same_layout(own, control, "control variate");
  }
  const auto started = std::chrono::steady_clock::now();
  FitOutcome outcome = procedure.fit(model, fit_instruction, context);
  outcome.metrics["fit_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  NamedTensors tensors = to_named_tensors(outcome.adapter);
  for (auto& [name, tensor] : outcome.parameters) {
    tensors.emplace(wire::kParameterPrefix + name, tensor);
  }
  for (auto& [name, tensor] : to_named_tensors(outcome.control)) {
    tensors.emplace(wire::kControlPrefix + name, tensor);
  }
  return wire::Envelope{
      instruction.round, options_.id, wire::kServerId,
      wire::FitResBody{outcome.adapter.alpha, outcome.num_examples, std::move(outcome.metrics)},
      std::move(tensors)};
}

wire::Envelope VirtualClient::evaluate(ModelBackend& model, ClientProcedure& procedure,
                                       const wire::Envelope& instruction,
                                       const ClientContext& context) {
  const auto& body = std::get<wire::EvaluateInsBody>(instruction.body);
  Adapter adapter = adapter_from_named_tensors(instruction.tensors, body.alpha);
  // An adapter to evaluate may have any rank: it is applied, not trained
  // (FLoRA sends the stacks a client has not merged yet).
  validate_adapter(adapter, spec_, INT64_MAX);
  EvaluateOutcome outcome = procedure.evaluate(
      model, EvaluateInstruction{options_.id, std::move(adapter), body.config}, context);
  return wire::Envelope{
      instruction.round,
      options_.id,
      wire::kServerId,
      wire::EvaluateResBody{outcome.num_examples, outcome.loss, std::move(outcome.metrics)},
      {}};
}

}  // namespace lorafed
