#include "cli/plugins_command.hpp"

#include <fmt/format.h>

namespace lorafed::cli {

int list_plugins(const PluginRegistry& registry, bool show_path, std::ostream& out) {
  if (show_path) {
    out << "search path:\n";
    for (const auto& folder : registry.search_path()) out << "  " << folder.string() << "\n";
  }
  const std::vector<PluginCandidate> candidates = registry.discover();
  out << fmt::format("{:<10} {:<10} {:<8} {:<8} {:<10} {}\n", "KIND", "NAME", "VERSION", "ABI",
                     "TORCH", "PATH");
  for (const PluginCandidate& candidate : candidates) {
    if (!candidate.rejection.empty()) continue;
    const PluginDescription& d = candidate.description;
    out << fmt::format("{:<10} {:<10} {:<8} {:<8} {:<10} {}\n", d.kind, d.name, d.version,
                       d.abi_version, d.torch_version, d.path.string());
  }
  bool any_rejected = false;
  for (const PluginCandidate& candidate : candidates) {
    if (candidate.rejection.empty()) continue;
    if (!any_rejected) out << "\nrejected:\n";
    any_rejected = true;
    out << "  " << candidate.description.path.string() << ": " << candidate.rejection << "\n";
  }
  return 0;
}

}  // namespace lorafed::cli
