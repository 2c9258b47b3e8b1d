#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "src/federation_config.hpp"
#include "src/plugin_registry.hpp"

namespace lorafed {

// `lorafed simulate`: the server, the broker and every client in this
// process, clients on a pool of [simulation] threads, over the configured
// transport. With `resume_dir`, continues the run whose output folder it is
// after its last checkpointed round. Over a transport whose processes a
// launcher started together (mpi), this process plays its part: process 0
// the server (returning the summary), the others clients (returning null).
nlohmann::json run_simulation(const FederationConfig& config, const PluginRegistry& registry,
                              const std::filesystem::path& resume_dir = {});

// Everything a run checks before its first round, without running: the
// plugins it names load, each makes its objects from its own table (the
// server's model included), and no key is left that nobody read. Throws
// ConfigError or PluginError. `lorafed sweep` checks every point so.
void check_configuration(const FederationConfig& config, const PluginRegistry& registry);

// `lorafed server`: runs the federation, with the broker embedded (clients
// connect to [transport] endpoint) or, with [broker] embedded = false,
// through a `lorafed broker` at [broker] server_endpoint.
nlohmann::json run_server(const FederationConfig& config, const PluginRegistry& registry,
                          const std::filesystem::path& resume_dir = {});

// `lorafed broker`: clients connect to [transport] endpoint, the server to
// [broker] server_endpoint; runs until SIGINT or SIGTERM.
void run_broker(const FederationConfig& config, const PluginRegistry& registry);

// How `lorafed client` ended; main() turns it into the exit code.
enum class ClientOutcome {
  kShutdown,      // the server said the federation is over (exit 0)
  kInterrupted,   // SIGINT or SIGTERM (exit 130)
  kServerSilent,  // nothing heard for server_silence_timeout_s (exit 3)
  kRefused,       // the server refused its registration (exit 3)
};

// `lorafed client --id K` or `--clients LIST`: serves those clients over one
// connection, training on a pool of `threads` workers (one LibTorch thread
// each), until one of ClientOutcome (kRefused once the server refused every
// one of them).
ClientOutcome run_client(const FederationConfig& config, const PluginRegistry& registry,
                         const std::vector<std::int64_t>& client_indices, std::size_t threads = 1);

}  // namespace lorafed
