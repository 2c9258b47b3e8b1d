#pragma once

#include <span>
#include <string>
#include <vector>

#include "lorafed/export.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed {

// A strategy whose server step is "the global model plus a weighted sum of
// the clients' updates" implements this beside Strategy, so that [privacy]
// can clip every update and noise the sum (docs/privacy.md,
// docs/algorithms.md §Differential privacy). A strategy without it is
// refused under [privacy] mode = "central".
class LORAFED_API PrivateAggregation {
 public:
  virtual ~PrivateAggregation();

  // Throws lorafed::ConfigError, naming the [strategy] key, where this
  // strategy's configuration would let a weight or a reported number
  // depend on a client's data (example-count weights, client evaluation).
  virtual void check_private_configuration() const = 0;

  // The weight p_i of each instructed client, from what is public (the
  // ranks sent, the global model released so far), never from what the
  // client did: p_i ≥ 0 and Σ p_i = 1 over `instructed`. A client that
  // returns nothing counts as a zero update, so weights never depend on
  // who returned.
  virtual std::vector<double> update_weights(int round,
                                             std::span<const FitInstruction> instructed) const = 0;

  // What the client changed, in the space the strategy sums, relative to
  // what it was sent (`instruction`); every call for one round returns the
  // same names and shapes.
  virtual NamedTensors client_update(const FitInstruction& instruction,
                                     const FitResult& result) const = 0;

  // Folds U = Σ p_i u_i (clipped and noised by the caller) into the global
  // model; returns metrics to log. Metrics must be public too: nothing
  // computed from the clients' results other than U.
  virtual Metrics apply_update(int round, std::span<const FitInstruction> instructed,
                               const NamedTensors& update) = 0;
};

// The refusals that strategies share in check_private_configuration, as
// ConfigErrors naming the [strategy] key: weights by example counts
// (`data_weighted`; `instead` says what to set), and client evaluation.
LORAFED_API void refuse_data_weights(bool data_weighted, const std::string& instead);
LORAFED_API void refuse_client_evaluation(bool evaluate_clients);

}  // namespace lorafed
