#include "cli/plugins_command.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace lorafed::cli {

int list_plugins(const PluginRegistry& registry, bool show_path, std::ostream& out) {
  if (show_path) {
    out << "search path:\n";
    for (const auto& folder : registry.search_path()) out << "  " << folder.string() << "\n";
  }
  const std::vector<PluginCandidate> candidates = registry.discover();
  std::size_t name_width = 4;  // the NAME column fits the longest name
  for (const PluginCandidate& candidate : candidates) {
    if (candidate.rejection.empty())
      name_width = std::max(name_width, candidate.description.name.size());
  }
  out << fmt::format("{:<10} {:<{}} {:<8} {:<4} {:<8} {}\n", "KIND", "NAME", name_width, "VERSION",
                     "ABI", "TORCH", "PATH");
  for (const PluginCandidate& candidate : candidates) {
    if (!candidate.rejection.empty()) continue;
    const PluginDescription& d = candidate.description;
    out << fmt::format("{:<10} {:<{}} {:<8} {:<4} {:<8} {}\n", d.kind, d.name, name_width,
                       d.version, d.abi_version, d.torch_version, d.path.string());
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
