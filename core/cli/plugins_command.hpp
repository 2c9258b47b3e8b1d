#pragma once

#include <ostream>

#include "src/plugin_registry.hpp"

namespace lorafed::cli {

// `lorafed plugins`: one line per plugin found, then the rejected files and why.
int list_plugins(const PluginRegistry& registry, bool show_path, std::ostream& out);

}  // namespace lorafed::cli
