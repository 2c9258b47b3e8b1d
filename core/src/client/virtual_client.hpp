#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "lorafed/client_procedure.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/train_options.hpp"
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

  VirtualClient(Options options, std::shared_ptr<ModelBackend> model,
                std::shared_ptr<ClientProcedure> procedure);

  const std::string& id() const { return options_.id; }
  wire::Envelope registration() const;
  // Handles FitIns or EvaluateIns. Thread-safe: instructions to one client
  // run one at a time.
  wire::Envelope handle(const wire::Envelope& instruction);

 private:
  wire::Envelope fit(const wire::Envelope& instruction, const ClientContext& context);
  wire::Envelope evaluate(const wire::Envelope& instruction, const ClientContext& context);

  Options options_;
  std::shared_ptr<ModelBackend> model_;
  std::shared_ptr<ClientProcedure> procedure_;
  ModelSpec spec_;
  std::mutex busy_;
};

}  // namespace lorafed
