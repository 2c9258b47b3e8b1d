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
      spec_(model_->spec()) {}

wire::Envelope VirtualClient::registration() const {
  return wire::Envelope{
      0,
      options_.id,
      wire::kServerId,
      wire::RegisterBody{options_.rank, spec_.model_id, model_->num_train_examples()},
      {}};
}

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
    if (std::holds_alternative<wire::FitInsBody>(instruction.body))
      return fit(instruction, context);
    if (std::holds_alternative<wire::EvaluateInsBody>(instruction.body))
      return evaluate(instruction, context);
    throw Error(std::string("cannot handle ") + wire::body_name(instruction.body));
  } catch (const std::exception& error) {
    spdlog::error("{}: round {}: {}", options_.id, instruction.round, error.what());
    return wire::Envelope{instruction.round,
                          options_.id,
                          wire::kServerId,
                          wire::ErrorBody{wire::ErrorCode::kClientFailure, error.what()},
                          {}};
  }
}

wire::Envelope VirtualClient::fit(const wire::Envelope& instruction, const ClientContext& context) {
  const auto& body = std::get<wire::FitInsBody>(instruction.body);
  NamedTensors own = instruction.tensors;
  NamedTensors merge = wire::take_prefixed(own, wire::kMergePrefix);
  NamedTensors parameters = wire::take_prefixed(own, wire::kParameterPrefix);
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
  const auto started = std::chrono::steady_clock::now();
  FitOutcome outcome = procedure_->fit(*model_, fit_instruction, context);
  outcome.metrics["fit_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  NamedTensors tensors = to_named_tensors(outcome.adapter);
  for (auto& [name, tensor] : outcome.parameters) {
    tensors.emplace(wire::kParameterPrefix + name, tensor);
  }
  return wire::Envelope{
      instruction.round, options_.id, wire::kServerId,
      wire::FitResBody{outcome.adapter.alpha, outcome.num_examples, std::move(outcome.metrics)},
      std::move(tensors)};
}

wire::Envelope VirtualClient::evaluate(const wire::Envelope& instruction,
                                       const ClientContext& context) {
  const auto& body = std::get<wire::EvaluateInsBody>(instruction.body);
  Adapter adapter = adapter_from_named_tensors(instruction.tensors, body.alpha);
  // An adapter to evaluate may have any rank: it is applied, not trained
  // (FLoRA sends the stacks a client has not merged yet).
  validate_adapter(adapter, spec_, INT64_MAX);
  EvaluateOutcome outcome = procedure_->evaluate(
      *model_, EvaluateInstruction{options_.id, std::move(adapter), body.config}, context);
  return wire::Envelope{
      instruction.round,
      options_.id,
      wire::kServerId,
      wire::EvaluateResBody{outcome.num_examples, outcome.loss, std::move(outcome.metrics)},
      {}};
}

}  // namespace lorafed
