#include "cli/keygen_command.hpp"

#include "lorafed/plugin.hpp"

namespace lorafed::cli {

int keygen(const std::string& name, const PluginRegistry& registry, const std::string& transport,
           std::ostream& out) {
  // The keys are the transport's business: the core names no transport.
  const LoadedPlugin<TransportFactory> plugin = registry.transport(transport);
  out << plugin.factory->write_key_pair(name) << "\n";
  return 0;
}

}  // namespace lorafed::cli
