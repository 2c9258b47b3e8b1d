#include "src/runs.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <atomic>
#include <chrono>

#include <csignal>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "lorafed/error.hpp"
#include "src/broker/broker.hpp"
#include "src/client/client_host.hpp"
#include "src/federation_plugins.hpp"
#include "src/guarded_thread.hpp"
#include "src/metrics_writer.hpp"
#include "src/run_configuration.hpp"
#include "src/server/orchestrator.hpp"
#include "src/server/run_recorder.hpp"
#include "src/server/status_server.hpp"
#include "src/stop_signal.hpp"

namespace lorafed {
namespace {

// The server's model, which may write into the run folder; `check` for a
// configuration check, which writes nothing.
ModelContext server_context(const FederationConfig& config, bool check = false) {
  return ModelContext{ModelContext::Role::kServer, -1, config.num_clients, config.seed,
                      check ? std::string() : config.output_dir.string()};
}

// Makes the virtual clients a process hosts. Resident clients each get
// their backend now; on-demand ones (`[client] models = "on_demand"`) share
// one state store, and their backends are made one at a time (a factory
// reads its configuration table, which is not thread-safe).
class ClientMaker {
 public:
  ClientMaker(const FederationConfig& config, const FederationPlugins& plugins)
      : config_(config), plugins_(plugins) {
    if (!config.models_on_demand) return;
    const std::filesystem::path root =
        config.state_dir.empty() ? std::filesystem::temp_directory_path() : config.state_dir;
    const std::filesystem::path dir = root / ("lorafed-client-state-" + std::to_string(::getpid()));
    const auto budget = static_cast<std::size_t>(config.state_memory_mb) << 20;
    states_ = std::make_shared<ClientStateStore>(budget, dir);
    // Model plugins cache what their instances share (the base, the
    // dataset, the partition) while one instance holds it: this one does,
    // for as long as any on-demand client lives, so it is loaded once.
    anchor_ = plugins.make_model(
        ModelContext{ModelContext::Role::kClient, 0, config.num_clients, config.seed, {}});
    spdlog::info("client models on demand: state kept in memory up to {} MiB, then in {}",
                 config.state_memory_mb, dir.string());
  }

  std::shared_ptr<VirtualClient> make(std::int64_t index) const {
    VirtualClient::Options options;
    options.id = FederationConfig::client_id(index);
    options.index = index;
    options.rank = config_.client_rank(index);
    options.seed = config_.seed;
    options.train = config_.train;
    const ModelContext context{
        ModelContext::Role::kClient, index, config_.num_clients, config_.seed, {}};
    if (!states_) {
      return std::make_shared<VirtualClient>(std::move(options), plugins_.make_model(context),
                                             plugins_.make_client_procedure());
    }
    VirtualClient::ModelMaker make_model = [plugins = &plugins_, mutex = making_, anchor = anchor_,
                                            context] {
      std::lock_guard lock(*mutex);
      return plugins->make_model(context);
    };
    VirtualClient::ProcedureMaker make_procedure = [plugins = &plugins_, mutex = making_] {
      std::lock_guard lock(*mutex);
      return plugins->make_client_procedure();
    };
    return std::make_shared<VirtualClient>(std::move(options), std::move(make_model), states_,
                                           std::move(make_procedure));
  }

 private:
  const FederationConfig& config_;
  const FederationPlugins& plugins_;
  std::shared_ptr<ClientStateStore> states_;
  std::shared_ptr<ModelBackend> anchor_;
  std::shared_ptr<std::mutex> making_ = std::make_shared<std::mutex>();
};

ClientHost::Options host_options(const FederationConfig& config, std::size_t threads) {
  ClientHost::Options options;
  options.threads = threads;
  options.encode = config.encode;
  options.limits = config.limits;
  options.heartbeat_interval = config.heartbeat_interval();
  options.heartbeat_timeout = config.heartbeat_timeout();
  options.reconnect_backoff = FederationConfig::milliseconds(config.reconnect_backoff_s);
  options.reconnect_backoff_max = FederationConfig::milliseconds(config.reconnect_backoff_max_s);
  options.server_silence_timeout = FederationConfig::milliseconds(config.server_silence_timeout_s);
  return options;
}

BrokerOptions broker_options(const FederationConfig& config) {
  BrokerOptions options;
  options.heartbeat_interval = config.heartbeat_interval();
  options.heartbeat_timeout = config.heartbeat_timeout();
  options.limits = config.limits;
  // Room for every client twice over (ids that come and go), bounded.
  options.max_routes = static_cast<std::size_t>(2 * config.num_clients + 64);
  return options;
}

// The core names no transport: it asks whether channels leave the process.
void require_other_processes(const Transport& transport, const FederationConfig& config,
                             const char* what) {
  if (transport.crosses_processes()) return;
  throw ConfigError("[transport] name = \"" + config.transport_name +
                    "\" works only inside one process: " + what);
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

// The broker on a thread of this process (the default): clients connect to
// [transport] endpoint, the server to a private in-process endpoint. If the
// broker fails, it stops the run through `stop`; stop() says why.
class EmbeddedBroker {
 public:
  EmbeddedBroker(Transport& transport, const FederationConfig& config, const StopSignal& stop) {
    static std::atomic<int> instances{0};
    server_endpoint_ = "inproc://lorafed-broker-" + std::to_string(instances++);
    clients_ = transport.bind(config.endpoint, Peers::kClients);
    server_ = transport.bind(server_endpoint_, Peers::kServer);
    broker_ = std::make_unique<Broker>(*clients_, *server_, broker_options(config));
    thread_ = std::make_unique<GuardedThread>(
        "the broker", [this] { broker_->run(stop_); }, [&stop] { stop.request(); });
  }
  ~EmbeddedBroker() {
    stop_ = true;
    thread_.reset();
  }
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  const std::string& server_endpoint() const { return server_endpoint_; }
  // Stops the broker; rethrows what ended it, if anything did.
  void stop() {
    stop_ = true;
    thread_->join();
  }

 private:
  std::string server_endpoint_;
  std::unique_ptr<Channel> clients_;
  std::unique_ptr<Channel> server_;
  std::unique_ptr<Broker> broker_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<GuardedThread> thread_;
};

// The checkpoint to resume from, or none; the run's output goes to `resume_dir`.
std::optional<Checkpoint> read_checkpoint(const std::filesystem::path& resume_dir,
                                          const FederationConfig& config, const ModelSpec& spec) {
  if (resume_dir.empty()) return std::nullopt;
  check_resume_configuration(config, resume_dir);
  return Checkpoint::read(resume_dir / "checkpoint", RunRecorder::identity(config, spec));
}

// A fresh run in a folder that holds an earlier run (its resolved-config.toml,
// which every run writes first, says so): the files the earlier run wrote and
// this one will write again are removed first, so that none of them passes
// for this run's should it stop early (its summary would claim its results;
// `--resume` would continue its checkpoint beside this run's metrics).
// metrics.jsonl is truncated by MetricsWriter. A folder no run wrote to is
// left alone: `--out .` must not take a user's own `checkpoint/`.
void clear_earlier_run(const std::filesystem::path& output_dir) {
  if (!std::filesystem::exists(output_dir / "resolved-config.toml")) return;
  bool cleared = false;
  for (const char* name : {"summary.json", "checkpoint", "peft", "generations.jsonl"}) {
    std::error_code error;
    const auto removed = std::filesystem::remove_all(output_dir / name, error);
    if (error) {
      throw Error("cannot remove the earlier run's '" + (output_dir / name).string() +
                  "': " + error.message());
    }
    cleared = cleared || removed > 0;
  }
  if (cleared) {
    spdlog::warn("{} held an earlier run: its summary, checkpoint and exports are replaced",
                 output_dir.string());
  }
}

// Runs the orchestrator over `channel`, writing to the configured output
// folder (fresh) or continuing `checkpoint`'s run there.
nlohmann::json orchestrate(const FederationConfig& config, const FederationPlugins& plugins,
                           std::shared_ptr<ModelBackend> evaluator, Channel& channel,
                           std::optional<Checkpoint> checkpoint, const StopSignal& stop) {
  // The server's aggregation and evaluation run on this thread, with
  // [server] threads LibTorch threads (client workers keep one each). This
  // thread's LibTorch set-up runs first: it would reset the count later.
  at::get_num_threads();
  at::set_num_threads(config.server_thread_count());
  if (!checkpoint) clear_earlier_run(config.output_dir);
  MetricsWriter metrics(config.output_dir, checkpoint ? checkpoint->round : -1);
  write_run_configuration(config, config.output_dir);
  Orchestrator orchestrator(config, plugins.make_strategy(), std::move(evaluator), channel, metrics,
                            &stop.flag());
  if (checkpoint) orchestrator.set_resume(std::move(*checkpoint));
  StatusEndpoint status(config, orchestrator);
  return orchestrator.run();
}

}  // namespace

void check_configuration(const FederationConfig& config, const PluginRegistry& registry) {
  FederationPlugins plugins(config, registry);
  plugins.make_model(server_context(config, true));
  plugins.reject_unknown_keys();
}

namespace {

// Runs `body` while `plugins` keeps their libraries loaded: an exception of
// a plugin's own type is copied into an Error here, before its library can
// be unloaded with the objects that unwinding destroys (transport.hpp).
template <class Body>
auto while_loaded(const FederationPlugins& plugins, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    throw Error(error.what());
  }
}

// Serves the federation over `transport` with the broker in this process,
// or through a separate one (`embedded` false).
nlohmann::json serve_federation(const FederationConfig& config, const FederationPlugins& plugins,
                                Transport& transport, const std::filesystem::path& resume_dir,
                                bool embedded) {
  auto evaluator = plugins.make_model(server_context(config));
  plugins.reject_unknown_keys();
  std::optional<Checkpoint> checkpoint = read_checkpoint(resume_dir, config, evaluator->spec());
  const StopSignal stop;
  std::unique_ptr<EmbeddedBroker> broker;
  std::unique_ptr<Channel> channel;
  if (embedded) {
    broker = std::make_unique<EmbeddedBroker>(transport, config, stop);
    channel = transport.connect(broker->server_endpoint(), wire::kServerId);
  } else {
    spdlog::info("connecting to the broker at {}", config.broker_server_endpoint);
    channel = transport.connect(config.broker_server_endpoint, wire::kServerId);
  }
  nlohmann::json summary;
  serve_beside_threads(
      [&] {
        summary = orchestrate(config, plugins, evaluator, *channel, std::move(checkpoint), stop);
      },
      [&] {
        if (broker) broker->stop();
      });
  return summary;
}

// Serves `client_indices` over one connection to [transport] endpoint on a
// pool of `threads` workers, until the federation ends for them.
ClientOutcome host_clients(const FederationConfig& config, const FederationPlugins& plugins,
                           Transport& transport, const std::vector<std::int64_t>& client_indices,
                           std::size_t threads) {
  const ClientMaker maker(config, plugins);
  std::vector<std::shared_ptr<VirtualClient>> clients;
  for (const std::int64_t index : client_indices) {
    clients.push_back(maker.make(index));
    // The first client has read every key a client reads: a typo fails now,
    // not after thousands of clients were built.
    if (clients.size() == 1) plugins.reject_unknown_keys();
  }
  const StopSignal stop;
  // One connection for all of them: the broker routes by client id.
  const std::string name = clients.size() == 1
                               ? clients.front()->id()
                               : "clients-" + std::to_string(client_indices.front()) + "-" +
                                     std::to_string(client_indices.back());
  std::unique_ptr<Channel> channel = transport.connect(config.endpoint, name);
  if (clients.size() == 1) {
    spdlog::info("{} (rank {}) connecting to {}", name, config.client_rank(client_indices.front()),
                 config.endpoint);
  } else {
    spdlog::info("{} clients ({}) on {} threads connecting to {}", clients.size(), name, threads,
                 config.endpoint);
  }
  ClientHost::Options options = host_options(config, threads);
  options.announce_leaving = true;
  ClientHost host(std::move(clients), *channel, options, RuntimeClock::steady(), &stop.flag());
  if (host.run()) return ClientOutcome::kShutdown;
  if (stop.requested()) {
    spdlog::info("{}: stopped by {}", name, stop.name());
    return ClientOutcome::kInterrupted;
  }
  return host.all_refused() ? ClientOutcome::kRefused : ClientOutcome::kServerSilent;
}

// `mpirun -n K lorafed simulate`: process 0 runs the server and its broker,
// the others the virtual clients, dealt round-robin (client i to process
// 1 + i mod (K - 1)), each on [simulation] threads workers. Only process 0
// writes the run's output and returns its summary; the others return null.
nlohmann::json simulate_in_group(const FederationConfig& config, const FederationPlugins& plugins,
                                 Transport& transport, const std::filesystem::path& resume_dir,
                                 const ProcessGroup& group) {
  if (group.size < 2) {
    throw ConfigError("[transport] name = \"" + config.transport_name +
                      "\" runs the server and the clients in separate processes: start at least "
                      "2 (mpirun -n K lorafed simulate, K >= 2)");
  }
  if (group.index == 0) {
    spdlog::info("process 0 of {}: the server; {} clients on the other {}", group.size,
                 config.num_clients, group.size - 1);
    return serve_federation(config, plugins, transport, resume_dir, true);
  }
  std::vector<std::int64_t> mine;
  for (std::int64_t index = group.index - 1; index < config.num_clients; index += group.size - 1) {
    mine.push_back(index);
  }
  if (mine.empty()) {
    spdlog::warn("process {} of {}: no client to host ({} clients)", group.index, group.size,
                 config.num_clients);
    return nullptr;
  }
  const auto threads =
      std::min<std::size_t>(static_cast<std::size_t>(config.simulation_threads), mine.size());
  switch (host_clients(config, plugins, transport, mine, threads)) {
    case ClientOutcome::kShutdown:
      return nullptr;
    case ClientOutcome::kInterrupted:
      throw Interrupted("process " + std::to_string(group.index) + " (clients)");
    case ClientOutcome::kServerSilent:
      throw Error("process " + std::to_string(group.index) + ": the server fell silent");
    case ClientOutcome::kRefused:
      throw Error("process " + std::to_string(group.index) + ": the server refused its clients");
  }
  return nullptr;
}

// A transport whose processes start together serves `lorafed simulate` only.
void require_independent_processes(Transport& transport, const FederationConfig& config) {
  if (!transport.process_group()) return;
  throw ConfigError("[transport] name = \"" + config.transport_name +
                    "\" connects the processes of one launch: run `mpirun -n K lorafed simulate "
                    "CONFIG`, not a separate server, broker or client");
}

nlohmann::json simulate(const FederationConfig& config, const FederationPlugins& plugins,
                        const std::filesystem::path& resume_dir) {
  auto transport = plugins.transport();
  if (const std::optional<ProcessGroup> group = transport->process_group()) {
    return simulate_in_group(config, plugins, *transport, resume_dir, *group);
  }
  auto evaluator = plugins.make_model(server_context(config));
  std::optional<Checkpoint> checkpoint = read_checkpoint(resume_dir, config, evaluator->spec());
  const ClientMaker maker(config, plugins);
  std::vector<std::shared_ptr<VirtualClient>> clients;
  const auto started = std::chrono::steady_clock::now();
  for (std::int64_t index = 0; index < config.num_clients; ++index) {
    clients.push_back(maker.make(index));
    // The first client has read every key a client reads: a typo fails now,
    // not after thousands of clients were built.
    if (index == 0) plugins.reject_unknown_keys();
  }
  spdlog::info("simulating {} clients (built in {:.2f} s) on {} threads over '{}' ({})",
               config.num_clients,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
               config.simulation_threads, config.transport_name, config.endpoint);

  const StopSignal stop;
  EmbeddedBroker broker(*transport, config, stop);
  std::unique_ptr<Channel> server_channel =
      transport->connect(broker.server_endpoint(), wire::kServerId);
  std::unique_ptr<Channel> client_channel = transport->connect(config.endpoint, "simulation");
  ClientHost host(std::move(clients), *client_channel,
                  host_options(config, static_cast<std::size_t>(config.simulation_threads)),
                  RuntimeClock::steady(), &stop.flag());
  GuardedThread host_thread(
      "the client host", [&host] { host.run(); }, [&stop] { stop.request(); });
  nlohmann::json summary;
  serve_beside_threads(
      [&] {
        summary =
            orchestrate(config, plugins, evaluator, *server_channel, std::move(checkpoint), stop);
      },
      [&] {
        host.request_stop();
        host_thread.join();
        broker.stop();
      });
  return summary;
}

nlohmann::json serve(const FederationConfig& config, const FederationPlugins& plugins,
                     const std::filesystem::path& resume_dir) {
  auto transport = plugins.transport();
  require_other_processes(*transport, config,
                          "use `lorafed simulate`, or name = \"zmq\" for a server and separate "
                          "clients");
  require_independent_processes(*transport, config);
  return serve_federation(config, plugins, *transport, resume_dir, config.broker_embedded);
}

void relay(const FederationConfig& config, const FederationPlugins& plugins) {
  auto transport = plugins.transport();
  require_other_processes(*transport, config, "a broker serves other processes; use \"zmq\"");
  require_independent_processes(*transport, config);
  plugins.reject_unknown_keys_but_model();
  const StopSignal stop;
  std::unique_ptr<Channel> clients = transport->bind(config.endpoint, Peers::kClients);
  std::unique_ptr<Channel> server = transport->bind(config.broker_server_endpoint, Peers::kServer);
  spdlog::info("broker: clients on {}, the server on {}", config.endpoint,
               config.broker_server_endpoint);
  Broker broker(*clients, *server, broker_options(config));
  broker.run(stop.flag());
  spdlog::info("broker: stopped by {}", stop.name());
}

ClientOutcome take_part(const FederationConfig& config, const FederationPlugins& plugins,
                        const std::vector<std::int64_t>& client_indices, std::size_t threads) {
  for (const std::int64_t index : client_indices) {
    if (index < 0 || index >= config.num_clients) {
      throw ConfigError("client " + std::to_string(index) + " is outside 0.." +
                        std::to_string(config.num_clients - 1) + " ([federation] num_clients in " +
                        config.source.string() + ")");
    }
  }
  if (client_indices.empty()) throw ConfigError("no client to run");
  auto transport = plugins.transport();
  require_other_processes(*transport, config,
                          "a client cannot reach a server in another process; use \"zmq\"");
  require_independent_processes(*transport, config);
  return host_clients(config, plugins, *transport, client_indices, threads);
}

}  // namespace

nlohmann::json run_simulation(const FederationConfig& config, const PluginRegistry& registry,
                              const std::filesystem::path& resume_dir) {
  const FederationPlugins plugins(config, registry);
  return while_loaded(plugins, [&] { return simulate(config, plugins, resume_dir); });
}

nlohmann::json run_server(const FederationConfig& config, const PluginRegistry& registry,
                          const std::filesystem::path& resume_dir) {
  const FederationPlugins plugins(config, registry);
  return while_loaded(plugins, [&] { return serve(config, plugins, resume_dir); });
}

void run_broker(const FederationConfig& config, const PluginRegistry& registry) {
  const FederationPlugins plugins(config, registry);
  while_loaded(plugins, [&] { relay(config, plugins); });
}

ClientOutcome run_client(const FederationConfig& config, const PluginRegistry& registry,
                         const std::vector<std::int64_t>& client_indices, std::size_t threads) {
  const FederationPlugins plugins(config, registry);
  return while_loaded(plugins, [&] { return take_part(config, plugins, client_indices, threads); });
}

}  // namespace lorafed
