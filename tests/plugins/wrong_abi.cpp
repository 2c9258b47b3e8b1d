// A strategy plugin that claims another ABI version: the registry must
// refuse it before touching anything else in it.
#include <boost/dll/alias.hpp>

#include "lorafed/plugin.hpp"

namespace wrong_abi {
const lorafed::PluginInfo info{lorafed::kAbiVersion + 998,
                               lorafed::PluginKind::kStrategy,
                               "wrongabi",
                               "9.9.9",
                               "9.9.9",
                               "none",
                               "none"};
lorafed::PluginFactory* factory() {
  return nullptr;
}
}  // namespace wrong_abi

BOOST_DLL_ALIAS(wrong_abi::info, lorafed_plugin_info)
BOOST_DLL_ALIAS(wrong_abi::factory, lorafed_plugin_factory)
