#pragma once

#include <ostream>
#include <string>

#include "src/plugin_registry.hpp"

namespace lorafed::cli {

// `lorafed keygen NAME [--transport zmq]`: a new key pair for the named
// transport's authentication, written by its plugin (the zmq transport: a
// CURVE pair as NAME.key, mode 600, and NAME.pub; docs/deployment.md §Keys).
// Refuses to overwrite an existing file.
int keygen(const std::string& name, const PluginRegistry& registry, const std::string& transport,
           std::ostream& out);

}  // namespace lorafed::cli
