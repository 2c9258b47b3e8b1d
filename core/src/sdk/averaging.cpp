#include "lorafed/averaging.hpp"

#include <ATen/ATen.h>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

void check_weights(std::span<const FitResult> results, std::span<const double> weights) {
  if (results.size() != weights.size()) {
    throw Error("averaging " + std::to_string(results.size()) + " results with " +
                std::to_string(weights.size()) + " weights");
  }
}

void check_same_shape(const at::Tensor& tensor, const at::Tensor& reference,
                      const std::string& client, const std::string& what) {
  if (!tensor.defined() || !tensor.sizes().equals(reference.sizes())) {
    throw FormatError(client + ": " + what + " has shape " +
                      (tensor.defined() ? c10::str(tensor.sizes()) : std::string("(none)")) +
                      ", others have " + c10::str(reference.sizes()));
  }
}

}  // namespace

std::int64_t require_one_rank(std::span<const ClientInfo> clients, const std::string& strategy) {
  if (clients.empty()) return 0;
  for (const ClientInfo& client : clients) {
    if (client.rank != clients.front().rank) {
      throw ConfigError("strategy " + strategy + " needs one LoRA rank for every client, but " +
                        clients.front().id + " has rank " + std::to_string(clients.front().rank) +
                        " and " + client.id + " rank " + std::to_string(client.rank) +
                        ": set one [lora] rank, or use a heterogeneous-rank strategy (fedhl, "
                        "flexlora, hetlora, flora)");
    }
  }
  return clients.front().rank;
}

std::vector<FitInstruction> instruct_with_global_adapter(Adapter& global,
                                                         std::span<const ClientInfo> clients,
                                                         const StrategyContext& context,
                                                         const std::string& strategy) {
  const std::int64_t rank = require_one_rank(clients, strategy);
  if (global.layers.empty() && rank > 0)
    global = init_adapter(context.spec, rank, context.alpha, context.seed);
  std::vector<FitInstruction> instructions;
  for (const ClientInfo& client : clients) {
    if (client.rank != global.rank()) {
      throw ConfigError("strategy " + strategy + ": client " + client.id + " has rank " +
                        std::to_string(client.rank) + " but the global adapter has rank " +
                        std::to_string(global.rank()));
    }
    instructions.push_back(FitInstruction{client.id, global, {}});
  }
  return instructions;
}

Adapter average_adapters(std::span<const FitResult> results, std::span<const double> weights) {
  check_weights(results, weights);
  Adapter average;
  if (results.empty()) return average;
  const Adapter& first = results.front().adapter;
  average.alpha = first.alpha;
  for (const auto& [name, reference] : first.layers) {
    at::Tensor a = at::zeros_like(reference.a);
    at::Tensor b = at::zeros_like(reference.b);
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto found = results[i].adapter.layers.find(name);
      if (found == results[i].adapter.layers.end())
        throw FormatError(results[i].client_id + ": adapter lacks layer '" + name + "'");
      check_same_shape(found->second.a, reference.a, results[i].client_id, name + ".lora_A");
      check_same_shape(found->second.b, reference.b, results[i].client_id, name + ".lora_B");
      a.add_(found->second.a, weights[i]);
      b.add_(found->second.b, weights[i]);
    }
    average.layers.emplace(name, LoraFactors{std::move(a), std::move(b)});
  }
  for (const FitResult& result : results) {
    if (result.adapter.layers.size() != first.layers.size())
      throw FormatError(result.client_id + ": adapter has other layers than the rest");
  }
  return average;
}

NamedTensors average_parameters(std::span<const FitResult> results,
                                std::span<const double> weights) {
  check_weights(results, weights);
  NamedTensors average;
  if (results.empty()) return average;
  for (const auto& [name, reference] : results.front().parameters) {
    at::Tensor sum = at::zeros_like(reference);
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto found = results[i].parameters.find(name);
      if (found == results[i].parameters.end())
        throw FormatError(results[i].client_id + ": did not return parameter '" + name + "'");
      check_same_shape(found->second, reference, results[i].client_id, name);
      sum.add_(found->second, weights[i]);
    }
    average.emplace(name, std::move(sum));
  }
  for (const FitResult& result : results) {
    if (result.parameters.size() != average.size())
      throw FormatError(result.client_id + ": returned other parameters than the rest");
  }
  return average;
}

}  // namespace lorafed
