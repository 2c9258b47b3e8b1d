#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/plugin_registry.hpp"

namespace lorafed::cli {

// `lorafed aggregate`: one strategy's server step, offline, on files
// (docs/configuration.md): reproduces or debugs an aggregation.
struct AggregateOptions {
  std::string strategy;              // plugin name (or [strategy] name of `config`)
  std::string config;                // optional TOML whose [strategy] table configures it
  std::string state;                 // optional strategy state (safetensors) to start from
  std::vector<std::string> clients;  // PATH[:EXAMPLES] of each client's returned factors
  std::string output;                // where the new state goes (safetensors)
  double alpha = 16.0;               // used when a client file has no lora_alpha metadata
  int round = 1;
  std::uint64_t seed = 0;
};

int aggregate(const AggregateOptions& options, const PluginRegistry& registry);

}  // namespace lorafed::cli
