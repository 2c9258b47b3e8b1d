#include "lorafed/personalised_strategy.hpp"

#include <cmath>

namespace lorafed {

PersonalisedStrategy::~PersonalisedStrategy() = default;

bool PersonalisedStrategy::personalised() const {
  return true;
}

NamedTensors PersonalisedStrategy::global_delta() const {
  return {};
}

std::vector<EvaluateInstruction> PersonalisedStrategy::configure_evaluate(
    int, std::span<const ClientInfo> clients) {
  std::vector<EvaluateInstruction> instructions;
  for (const ClientInfo& client : clients) instructions.push_back({client.id, Adapter{}, {}});
  return instructions;
}

Metrics PersonalisedStrategy::aggregate_evaluate(int, std::span<const EvaluateResult> results,
                                                 std::span<const Failure>) {
  return mean_over_clients(results);
}

Metrics mean_over_clients(std::span<const EvaluateResult> results) {
  Metrics sums, squares;
  for (const EvaluateResult& result : results) {
    Metrics values = result.metrics;
    values["loss"] = result.loss;
    for (const auto& [name, value] : values) {
      sums[name] += value;
      squares[name] += value * value;
    }
  }
  Metrics summary;
  if (results.empty()) return summary;
  const auto n = static_cast<double>(results.size());
  for (const auto& [name, sum] : sums) {
    const double mean = sum / n;
    summary[name] = mean;
    summary[name + "_std"] = std::sqrt(std::max(0.0, squares.at(name) / n - mean * mean));
  }
  summary["clients_evaluated"] = n;
  return summary;
}

PersonalisedProcedure::~PersonalisedProcedure() = default;

EvaluateOutcome PersonalisedProcedure::evaluate(ModelBackend& model, const EvaluateInstruction&,
                                                const ClientContext&) {
  const EvalReport report = model.evaluate();
  return EvaluateOutcome{report.num_examples, report.loss, report.metrics};
}

}  // namespace lorafed
