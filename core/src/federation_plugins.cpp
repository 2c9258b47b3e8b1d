#include "src/federation_plugins.hpp"

#include <ATen/ATen.h>
#include <toml++/toml.h>

#include "lorafed/error.hpp"
#include "src/attributed_transport.hpp"
#include "src/privacy/central_privacy.hpp"
#include "src/privacy/local_privacy.hpp"

namespace lorafed {
namespace {

// No exception leaves a plugin untranslated: configuration errors pass as
// they are (they already name the key), anything else names the plugin.
template <class Factory, class Make>
auto call_plugin(const LoadedPlugin<Factory>& plugin, const char* what, Make make) {
  const std::string who = plugin.description.kind + " plugin '" + plugin.description.name + "'";
  try {
    auto object = make(*plugin.factory);
    if (!object) throw PluginError(who + " returned no " + what);
    return keep_library_alive(std::move(object), plugin.factory);
  } catch (const ConfigError&) {
    throw;
  } catch (const PluginError&) {
    throw;
  } catch (const std::exception& error) {
    throw PluginError(who + " failed to create its " + what + ": " + error.what());
  } catch (...) {
    throw PluginError(who + " threw a non-standard exception creating its " + what);
  }
}

}  // namespace

FederationPlugins::FederationPlugins(const FederationConfig& config, const PluginRegistry& registry)
    : config_(config),
      strategy_(registry.strategy(config.strategy_name)),
      model_(registry.model(config.model_name)),
      transport_plugin_(registry.transport(config.transport_name)) {
  config.transport_table.mark_read("name");
  config.transport_table.mark_read("endpoint");
  transport_ = attribute_transport(call_plugin(transport_plugin_, "transport",
                                               [&](const TransportFactory& factory) {
                                                 return factory.create(config.transport_table);
                                               }),
                                   transport_plugin_.description.name);
  make_strategy();
  make_client_procedure();
}

std::shared_ptr<Strategy> FederationPlugins::make_strategy() const {
  std::shared_ptr<Strategy> strategy =
      call_plugin(strategy_, "strategy", [&](const StrategyFactory& factory) {
        return factory.create_strategy(config_.strategy_table);
      });
  switch (config_.privacy.mode) {
    case PrivacyConfig::Mode::kOff:
      return strategy;
    case PrivacyConfig::Mode::kCentral:
      return std::make_shared<CentralPrivacy>(std::move(strategy), config_.privacy,
                                              config_.strategy_name);
    case PrivacyConfig::Mode::kLocal:
      return std::make_shared<LocalPrivacyAccounting>(std::move(strategy), config_.privacy,
                                                      config_.strategy_name);
  }
  return strategy;
}

std::shared_ptr<ClientProcedure> FederationPlugins::make_client_procedure() const {
  std::shared_ptr<ClientProcedure> procedure =
      call_plugin(strategy_, "client procedure", [&](const StrategyFactory& factory) {
        return factory.create_client_procedure(config_.strategy_table);
      });
  if (config_.privacy.mode != PrivacyConfig::Mode::kLocal) return procedure;
  return std::make_shared<LocalPrivacyProcedure>(std::move(procedure), config_.privacy);
}

std::shared_ptr<ModelBackend> FederationPlugins::make_model(const ModelContext& context) const {
  return call_plugin(model_, "model", [&](const ModelFactory& factory) {
    auto model = factory.create(config_.model_table, context);
    // Each model made is checked: a personalised federation's clients may
    // have different models (cnnzoo); the server's configures every client.
    if (model) {
      check_ranks_fit(config_, model->spec(),
                      context.role == ModelContext::Role::kClient ? context.client_index : -1);
    }
    return model;
  });
}

void FederationPlugins::reject_unknown_keys_but_model() const {
  // [model] and everything in it count as read; every other key is judged
  // as the server judges it, with the same message (a top-level scalar too).
  const toml::table document = toml::parse(config_.document.to_toml());
  if (const toml::table* model = document["model"].as_table()) {
    config_.document.mark_read("model");
    auto mark = [this](auto&& self, const toml::table& table, const std::string& path) -> void {
      for (const auto& [key, node] : table) {
        const std::string full = path + "." + std::string(key.str());
        config_.document.mark_read(full);
        if (const toml::table* sub = node.as_table()) self(self, *sub, full);
      }
    };
    mark(mark, *model, "model");
  }
  config_.document.reject_unknown_keys();
}

}  // namespace lorafed
