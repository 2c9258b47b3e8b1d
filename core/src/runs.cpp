#include "src/runs.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "lorafed/error.hpp"
#include "src/client/client_host.hpp"
#include "src/federation_plugins.hpp"
#include "src/metrics_writer.hpp"
#include "src/server/orchestrator.hpp"
#include "src/server/status_server.hpp"

namespace lorafed {
namespace {

ModelContext server_context(const FederationConfig& config) {
  return ModelContext{ModelContext::Role::kServer, -1, config.num_clients, config.seed};
}

std::shared_ptr<VirtualClient> make_client(const FederationConfig& config,
                                           const FederationPlugins& plugins, std::int64_t index) {
  VirtualClient::Options options;
  options.id = FederationConfig::client_id(index);
  options.index = index;
  options.rank = config.client_rank(index);
  options.seed = config.seed;
  options.train = config.train;
  auto model = plugins.make_model(
      ModelContext{ModelContext::Role::kClient, index, config.num_clients, config.seed});
  return std::make_shared<VirtualClient>(std::move(options), std::move(model),
                                         plugins.make_client_procedure());
}

ClientHost::Options host_options(const FederationConfig& config, std::size_t threads) {
  ClientHost::Options options;
  options.threads = threads;
  options.encode = config.encode;
  options.limits = config.limits;
  options.server_silence_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(config.server_silence_timeout_s * 1000));
  return options;
}

// The [status] endpoint, when configured, for the orchestrator's lifetime.
class StatusEndpoint {
 public:
  StatusEndpoint(const FederationConfig& config, Orchestrator& orchestrator) {
    if (config.status_listen.empty()) return;
    board_ = std::make_unique<StatusBoard>(config.strategy_name, config.model_name, config.rounds);
    server_ = std::make_unique<StatusServer>(*board_, config.status_listen);
    orchestrator.set_status_board(board_.get());
  }

 private:
  std::unique_ptr<StatusBoard> board_;
  std::unique_ptr<StatusServer> server_;  // after board_: stops serving before it goes
};

}  // namespace

nlohmann::json run_simulation(const FederationConfig& config, const PluginRegistry& registry) {
  FederationPlugins plugins(config, registry);
  auto evaluator = plugins.make_model(server_context(config));
  std::vector<std::shared_ptr<VirtualClient>> clients;
  for (std::int64_t index = 0; index < config.num_clients; ++index) {
    clients.push_back(make_client(config, plugins, index));
  }
  plugins.reject_unknown_keys();
  spdlog::info("simulating {} clients on {} threads over '{}' ({})", config.num_clients,
               config.simulation_threads, config.transport_name, config.endpoint);

  auto transport = plugins.transport();
  std::unique_ptr<Channel> server_channel = transport->bind(config.endpoint);
  std::unique_ptr<Channel> client_channel = transport->connect(config.endpoint, "simulation");
  ClientHost host(std::move(clients), *client_channel,
                  host_options(config, static_cast<std::size_t>(config.simulation_threads)));
  std::thread host_thread([&host] { host.run(); });

  MetricsWriter metrics(config.output_dir);
  Orchestrator orchestrator(config, plugins.make_strategy(), evaluator, *server_channel, metrics);
  StatusEndpoint status(config, orchestrator);
  nlohmann::json summary;
  try {
    summary = orchestrator.run();
  } catch (...) {
    host.request_stop();
    host_thread.join();
    throw;
  }
  host_thread.join();
  return summary;
}

nlohmann::json run_server(const FederationConfig& config, const PluginRegistry& registry) {
  if (config.transport_name == "inproc") {
    throw ConfigError(
        "[transport] name = \"inproc\" works only inside one process: use `lorafed simulate`, "
        "or name = \"zmq\" for a server and separate clients");
  }
  FederationPlugins plugins(config, registry);
  auto evaluator = plugins.make_model(server_context(config));
  plugins.reject_unknown_keys();
  std::unique_ptr<Channel> channel = plugins.transport()->bind(config.endpoint);
  MetricsWriter metrics(config.output_dir);
  Orchestrator orchestrator(config, plugins.make_strategy(), evaluator, *channel, metrics);
  StatusEndpoint status(config, orchestrator);
  return orchestrator.run();
}

bool run_client(const FederationConfig& config, const PluginRegistry& registry,
                std::int64_t client_index) {
  if (client_index < 0 || client_index >= config.num_clients) {
    throw ConfigError("--id " + std::to_string(client_index) + " is outside 0.." +
                      std::to_string(config.num_clients - 1) + " ([federation] num_clients in " +
                      config.source.string() + ")");
  }
  if (config.transport_name == "inproc") {
    throw ConfigError(
        "[transport] name = \"inproc\" cannot reach a server in another process: use \"zmq\"");
  }
  FederationPlugins plugins(config, registry);
  auto client = make_client(config, plugins, client_index);
  plugins.reject_unknown_keys();
  std::unique_ptr<Channel> channel = plugins.transport()->connect(config.endpoint, client->id());
  spdlog::info("{} (rank {}) connecting to {}", client->id(), config.client_rank(client_index),
               config.endpoint);
  ClientHost host({client}, *channel, host_options(config, 1));
  return host.run();
}

}  // namespace lorafed
