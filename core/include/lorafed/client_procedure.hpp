#pragma once

#include <cstdint>
#include <string>

#include "lorafed/adapter.hpp"
#include "lorafed/config_value.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed {

// What a client knows about itself when it runs a procedure.
struct ClientContext {
  std::string client_id;
  std::int64_t client_index = 0;
  std::int64_t rank = 0;  // the largest rank this client trains
  int round = 0;
  std::uint64_t seed = 0;  // already mixed with client and round
  TrainOptions train;
};

struct FitOutcome {
  Adapter adapter;  // empty when the strategy shares no adapter
  std::int64_t num_examples = 0;
  Metrics metrics;
  NamedTensors parameters = {};  // shared model parameters to return, if any
  Adapter control = {};          // in the adapter's layout (FitResult::control), if any
};

struct EvaluateOutcome {
  std::int64_t num_examples = 0;
  double loss = 0.0;
  Metrics metrics;
};

// The client half of a strategy: what a client does with its instruction.
class LORAFED_API ClientProcedure {
 public:
  virtual ~ClientProcedure();
  virtual FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                         const ClientContext& context) = 0;
  virtual EvaluateOutcome evaluate(ModelBackend& model, const EvaluateInstruction& instruction,
                                   const ClientContext& context) = 0;

  // What this client's procedure carries from one round to the next
  // (Ditto's personal adapter, SCAFFOLD's c_i), so that a client whose
  // model exists only while it works ([client] models = "on_demand") keeps
  // it in the state store, which may spill to disk: a fresh procedure given
  // load_client_state(client_state()) behaves as this one. The default
  // carries nothing.
  virtual NamedTensors client_state() const;
  virtual void load_client_state(const NamedTensors& state);
};

// Plain LoRA fine-tuning: install the adapter, train it with the base
// frozen, return it. Most strategies use it as is or derive from it.
class LORAFED_API LoraTrainingProcedure : public ClientProcedure {
 public:
  ~LoraTrainingProcedure() override;
  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override;
  EvaluateOutcome evaluate(ModelBackend& model, const EvaluateInstruction& instruction,
                           const ClientContext& context) override;
};

}  // namespace lorafed
