#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

#include "src/federation_config.hpp"
#include "src/plugin_registry.hpp"

namespace lorafed {

// `lorafed simulate`: the server and every client in this process, clients
// on a pool of [simulation] threads, over the configured transport.
nlohmann::json run_simulation(const FederationConfig& config, const PluginRegistry& registry);

// `lorafed server`: binds the endpoint and runs the federation.
nlohmann::json run_server(const FederationConfig& config, const PluginRegistry& registry);

// `lorafed client --id K`: serves client K until the server shuts it down
// (true) or falls silent (false).
bool run_client(const FederationConfig& config, const PluginRegistry& registry,
                std::int64_t client_index);

}  // namespace lorafed
