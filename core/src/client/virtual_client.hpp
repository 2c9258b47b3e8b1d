#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "lorafed/client_procedure.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/train_options.hpp"
#include "src/client/client_state_store.hpp"
#include "src/wire/messages.hpp"

namespace lorafed {

// One federated client: its model and data, its strategy's procedure, and
// its rank. Turns an instruction into a reply; never throws for a failure of
// the procedure (that becomes an Error reply the server records).
class VirtualClient {
 public:
  struct Options {
    std::string id;
    std::int64_t index = 0;
    std::int64_t rank = 0;
    std::uint64_t seed = 0;
    TrainOptions train;
  };

  // A resident client: `model` lives as long as the client.
  VirtualClient(Options options, std::shared_ptr<ModelBackend> model,
                std::shared_ptr<ClientProcedure> procedure);

  // An on-demand client: its backend and its procedure exist only while it
  // handles an instruction. `make_model` and `make_procedure` make them
  // (from any worker thread); what they carry to the next instruction
  // (ModelBackend::client_state, ClientProcedure::client_state) waits in
  // `states`, and is replaced only when an instruction succeeds. The model
  // is made once here, to learn the spec and the number of training examples.
  using ModelMaker = std::function<std::shared_ptr<ModelBackend>()>;
  using ProcedureMaker = std::function<std::shared_ptr<ClientProcedure>()>;
  VirtualClient(Options options, ModelMaker make_model, std::shared_ptr<ClientStateStore> states,
                ProcedureMaker make_procedure);

  const std::string& id() const { return options_.id; }
  wire::Envelope registration() const;
  // Handles FitIns or EvaluateIns. Thread-safe: instructions to one client
  // run one at a time.
  wire::Envelope handle(const wire::Envelope& instruction);

 private:
  wire::Envelope fit(ModelBackend& model, ClientProcedure& procedure,
                     const wire::Envelope& instruction, const ClientContext& context);
  wire::Envelope evaluate(ModelBackend& model, ClientProcedure& procedure,
                          const wire::Envelope& instruction, const ClientContext& context);

  Options options_;
  std::shared_ptr<ModelBackend> model_;         // resident clients only
  std::shared_ptr<ClientProcedure> procedure_;  // resident clients only
  ModelMaker make_model_;                       // on-demand clients only
  ProcedureMaker make_procedure_;               // on-demand clients only
  std::shared_ptr<ClientStateStore> states_;
  ModelSpec spec_;
  std::int64_t num_train_examples_ = 0;
  std::mutex busy_;
};

}  // namespace lorafed
