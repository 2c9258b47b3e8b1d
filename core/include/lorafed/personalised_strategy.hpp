#pragma once
// The server half shared by personalised strategies (pFedLoRA, LG-FedAvg,
// Standalone): no global model; every client's own model is evaluated on its
// own test split and the server reports the mean over clients.

#include "lorafed/client_procedure.hpp"
#include "lorafed/export.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed {

class LORAFED_API PersonalisedStrategy : public Strategy {
 public:
  ~PersonalisedStrategy() override;

  bool personalised() const override;
  // Nothing to evaluate on the server.
  NamedTensors global_delta() const override;
  // Every registered client evaluates its current model; nothing is sent.
  std::vector<EvaluateInstruction> configure_evaluate(int round,
                                                      std::span<const ClientInfo> clients) override;
  // mean_over_clients(results).
  Metrics aggregate_evaluate(int round, std::span<const EvaluateResult> results,
                             std::span<const Failure> failures) override;
};

// The mean over clients (each client counts once, as personalised FL
// reports it) of the loss and every metric, and "<metric>_std", their
// population standard deviation over clients; "clients_evaluated".
LORAFED_API Metrics mean_over_clients(std::span<const EvaluateResult> results);

// The client half shared by personalised strategies: evaluation of the
// client's model as it stands (its local model and its own adapter) on its
// own test split. Derived procedures write fit().
class LORAFED_API PersonalisedProcedure : public ClientProcedure {
 public:
  ~PersonalisedProcedure() override;
  EvaluateOutcome evaluate(ModelBackend& model, const EvaluateInstruction& instruction,
                           const ClientContext& context) override;
};

}  // namespace lorafed
