#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/config_value.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed {

// A registered client as the server sees it.
struct ClientInfo {
  std::string id;
  std::int64_t rank = 0;          // the largest LoRA rank it can train
  std::int64_t num_examples = 0;  // its training examples
  std::string model_id;
};

// What one client gets for a round: its adapter at its own rank, plus config.
// Tensors are sent without copying: do not modify them in place afterwards.
struct FitInstruction {
  std::string client_id;
  Adapter adapter;
  ConfigMap config;
  // An adapter the client merges into its base weights before training
  // (FLoRA); empty for most strategies.
  Adapter merge = {};
  // Whole model parameters to load before training, named as the spec's
  // shared_parameters (LG-FedAvg's head); empty for most strategies.
  NamedTensors parameters = {};
  // Tensors in the layout of `adapter` (same layers, same shapes) that are
  // not a model: SCAFFOLD's server control variate. Empty for most
  // strategies; when set, the client checks its layout against `adapter`.
  Adapter control = {};
};

struct FitResult {
  std::string client_id;
  Adapter adapter;  // the trained factors, at the rank the client was sent
  std::int64_t num_examples = 0;
  Metrics metrics;
  NamedTensors parameters = {};  // shared parameters the client returned, if any
  // In the layout of `adapter`, checked by the server: SCAFFOLD's change of
  // the client's control variate. Empty unless the procedure returned one.
  Adapter control = {};
};

struct EvaluateInstruction {
  std::string client_id;
  Adapter adapter;
  ConfigMap config;
};

struct EvaluateResult {
  std::string client_id;
  std::int64_t num_examples = 0;
  double loss = 0.0;
  Metrics metrics;
};

// A sampled client that returned nothing usable this round.
struct Failure {
  std::string client_id;
  std::string reason;
};

struct StrategyContext {
  ModelSpec spec;
  double alpha = 16.0;
  std::uint64_t seed = 0;
  // The clients the federation has ([federation] num_clients); 0 where
  // nobody knows (`lorafed aggregate`).
  std::int64_t num_clients = 0;
};

// The server half of an aggregation strategy, in Flower's vocabulary.
// Results arrive sorted by client id, so aggregation order is deterministic.
class LORAFED_API Strategy {
 public:
  virtual ~Strategy();

  virtual void initialize(const StrategyContext& context) = 0;
  virtual std::vector<FitInstruction> configure_fit(int round,
                                                    std::span<const ClientInfo> clients) = 0;
  // Folds this round's results into the global state; returns metrics to log.
  virtual Metrics aggregate_fit(int round, std::span<const FitResult> results,
                                std::span<const Failure> failures) = 0;

  // Federated evaluation. The default sends nothing (no federated evaluation).
  virtual std::vector<EvaluateInstruction> configure_evaluate(int round,
                                                              std::span<const ClientInfo> clients);
  // The default averages loss and metrics weighted by examples.
  virtual Metrics aggregate_evaluate(int round, std::span<const EvaluateResult> results,
                                     std::span<const Failure> failures);

  // The global model as a dense change per target layer (out × in): what the
  // server evaluates. Empty before the first aggregation is fine.
  virtual NamedTensors global_delta() const = 0;
  // True when there is no global model to evaluate: every client keeps its
  // own (personalised FL). The server then reports federated evaluation of
  // the clients' models (configure_evaluate) in place of a global one.
  virtual bool personalised() const;

  // Everything needed to resume, as named tensors (checkpoints).
  virtual NamedTensors state() const = 0;
  virtual void load_state(const NamedTensors& state) = 0;
};

}  // namespace lorafed
