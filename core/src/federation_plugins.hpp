#pragma once

#include <memory>

#include "lorafed/client_procedure.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/transport.hpp"
#include "src/federation_config.hpp"
#include "src/plugin_registry.hpp"

namespace lorafed {

// The three plugins a configuration names, loaded and checked: both halves
// of the strategy and the transport are created once up front so that every
// key of their tables is read, and a misspelt key fails before any round.
// Objects made here keep their plugin's library loaded.
class FederationPlugins {
 public:
  FederationPlugins(const FederationConfig& config, const PluginRegistry& registry);

  std::shared_ptr<Strategy> make_strategy() const;
  std::shared_ptr<ClientProcedure> make_client_procedure() const;
  std::shared_ptr<ModelBackend> make_model(const ModelContext& context) const;
  std::shared_ptr<Transport> transport() const { return transport_; }

  // Call after the model(s) this process needs were made: rejects keys of
  // the whole configuration that no reader asked for.
  void reject_unknown_keys() const { config_.document.reject_unknown_keys(); }
  // The same for a process that makes no model (a broker): [model] is left
  // to the server and the clients, every other table is checked.
  void reject_unknown_keys_but_model() const;

 private:
  const FederationConfig& config_;
  LoadedPlugin<StrategyFactory> strategy_;
  LoadedPlugin<ModelFactory> model_;
  LoadedPlugin<TransportFactory> transport_plugin_;
  std::shared_ptr<Transport> transport_;
};

}  // namespace lorafed
