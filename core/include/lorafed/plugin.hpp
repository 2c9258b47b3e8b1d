#pragma once

// What a plugin includes to export itself. A plugin exports exactly two
// symbols (docs/architecture.md, "Plugins"): a plain-data info record the host reads first, and
// one factory. Use the LORAFED_*_PLUGIN macros at the end of one source file:
//
//   class MyFactory final : public lorafed::StrategyFactory { ... };
//   LORAFED_STRATEGY_PLUGIN("mystrategy", "1.0.0", MyFactory)

#include <torch/version.h>

#include <boost/dll/alias.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "lorafed/client_procedure.hpp"
#include "lorafed/config.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/transport.hpp"
#include "lorafed/version.hpp"

namespace lorafed {

enum class PluginKind : std::uint32_t { kStrategy = 1, kModel = 2, kTransport = 3 };

// Plain data, so the host can read it without trusting anything else in the
// library. Strings point into the plugin's read-only data.
struct PluginInfo {
  std::uint32_t abi_version;
  PluginKind kind;
  const char* name;
  const char* version;
  const char* framework_version;
  const char* compiler;
  const char* torch_version;
};

class LORAFED_API PluginFactory {
 public:
  virtual ~PluginFactory();
};

// Strategy plugins make both halves: the server's Strategy and the client's
// procedure, each from the `[strategy]` table.
class LORAFED_API StrategyFactory : public PluginFactory {
 public:
  ~StrategyFactory() override;
  virtual std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const = 0;
  virtual std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const = 0;
};

class LORAFED_API ModelFactory : public PluginFactory {
 public:
  ~ModelFactory() override;
  virtual std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                               const ModelContext& context) const = 0;
};

class LORAFED_API TransportFactory : public PluginFactory {
 public:
  ~TransportFactory() override;
  virtual std::unique_ptr<Transport> create(const ConfigTable& config) const = 0;
  // `lorafed keygen STEM`: writes a new key pair for this transport's
  // authentication (STEM.key, secret; STEM.pub, public) and returns a line
  // to show the user. The default throws ConfigError: no keys to make.
  virtual std::string write_key_pair(const std::string& stem) const;
};

namespace detail {
template <class Factory>
PluginFactory* plugin_factory_instance() {
  static Factory factory;
  return &factory;
}
}  // namespace detail

// Symbol names the host looks up.
inline constexpr const char* kPluginInfoSymbol = "lorafed_plugin_info";
inline constexpr const char* kPluginFactorySymbol = "lorafed_plugin_factory";

}  // namespace lorafed

#define LORAFED_PLUGIN_STRINGIFY_(x) #x
#define LORAFED_PLUGIN_STRINGIFY(x) LORAFED_PLUGIN_STRINGIFY_(x)

#define LORAFED_DEFINE_PLUGIN_(KIND, BASE, NAME, VERSION, FACTORY)                        \
  static_assert(std::is_base_of_v<BASE, FACTORY>,                                         \
                #FACTORY " must derive from " #BASE " for a " #KIND " plugin");           \
  namespace lorafed_plugin_export {                                                       \
  const ::lorafed::PluginInfo lorafed_plugin_info_record{                                 \
      ::lorafed::kAbiVersion, KIND,         NAME, VERSION, ::lorafed::kFrameworkVersion,  \
      "g++ " __VERSION__,     TORCH_VERSION};                                             \
  ::lorafed::PluginFactory* lorafed_plugin_factory_function() {                           \
    return ::lorafed::detail::plugin_factory_instance<FACTORY>();                         \
  }                                                                                       \
  }                                                                                       \
  BOOST_DLL_ALIAS(lorafed_plugin_export::lorafed_plugin_info_record, lorafed_plugin_info) \
  BOOST_DLL_ALIAS(lorafed_plugin_export::lorafed_plugin_factory_function, lorafed_plugin_factory)

#define LORAFED_STRATEGY_PLUGIN(NAME, VERSION, FACTORY)                                      \
  LORAFED_DEFINE_PLUGIN_(::lorafed::PluginKind::kStrategy, ::lorafed::StrategyFactory, NAME, \
                         VERSION, FACTORY)
#define LORAFED_MODEL_PLUGIN(NAME, VERSION, FACTORY)                                            \
  LORAFED_DEFINE_PLUGIN_(::lorafed::PluginKind::kModel, ::lorafed::ModelFactory, NAME, VERSION, \
                         FACTORY)
#define LORAFED_TRANSPORT_PLUGIN(NAME, VERSION, FACTORY)                                       \
  LORAFED_DEFINE_PLUGIN_(::lorafed::PluginKind::kTransport, ::lorafed::TransportFactory, NAME, \
                         VERSION, FACTORY)
