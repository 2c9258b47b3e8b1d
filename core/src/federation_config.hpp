#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lorafed/config.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/train_options.hpp"
#include "src/privacy/privacy_config.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

// A whole federation's configuration: the framework's own tables, parsed and
// checked here, and the plugins' tables handed on untouched (docs/configuration.md).
// docs/configuration.md lists every key.
struct FederationConfig {
  ConfigTable document;
  std::filesystem::path source;

  // [federation]
  int rounds = 3;
  std::int64_t num_clients = 10;
  std::uint64_t seed = 0;
  double fraction_fit = 1.0;
  std::int64_t min_fit_clients = 1;
  std::int64_t min_available_clients = 0;  // 0: all num_clients
  double round_timeout_s = 600;
  std::int64_t min_fit_results = 1;  // fewer results: the round is not aggregated
  double registration_timeout_s = 120;
  int evaluate_every = 1;
  std::filesystem::path output_dir;
  std::string log_level = "info";

  // [lora]
  std::vector<std::int64_t> ranks;  // one per client (src/rank_assignment.hpp)
  double alpha = 16;

  // [train]
  TrainOptions train;

  // [simulation]
  std::int64_t simulation_threads = 2;

  // [server]
  // 0 (the default): one per core.
  std::int64_t server_threads = 0;
  // LibTorch threads for the server's aggregation and evaluation.
  int server_thread_count() const;

  // [client]
  double server_silence_timeout_s = 600;
  double reconnect_backoff_s = 0.5;
  double reconnect_backoff_max_s = 10;
  // "resident": every virtual client keeps its model backend for the whole
  // run; "on_demand": a backend exists only while its client works, and
  // what it carries between rounds waits in a ClientStateStore, which
  // keeps up to state_memory_mb in memory and spills the rest to a folder
  // under state_dir (empty: the system's temporary folder).
  bool models_on_demand = false;
  std::int64_t state_memory_mb = 1024;
  std::filesystem::path state_dir;

  // [broker] (docs/deployment.md)
  bool broker_embedded = true;  // false: connect to a `lorafed broker` at broker_server_endpoint
  std::string broker_server_endpoint = "tcp://127.0.0.1:7701";
  double heartbeat_interval_s = 1;
  double heartbeat_timeout_s = 10;

  // [export]: the rank of <out>/peft/global; 0: the largest client rank
  std::int64_t export_rank = 0;

  // [privacy] (docs/privacy.md)
  PrivacyConfig privacy;
  // Draws each round's sample of clients: the run's seed, except under
  // [privacy], where who took part must stay secret for the sample rate's
  // amplification to hold (privacy.noise_seed, or the system's randomness).
  std::uint64_t sampling_seed = 0;

  // [checkpoint]
  bool checkpoint = true;  // <out>/checkpoint after every round, for --resume

  // [status]: the server's HTTP status endpoint, "host:port"; empty: off
  std::string status_listen;

  // [transport] keys the framework reads itself
  std::string transport_name = "inproc";
  std::string endpoint;
  wire::EncodeOptions encode;
  wire::DecodeLimits limits;

  // The plugins' own tables (their `name` key already read).
  std::string strategy_name;
  std::string model_name;
  ConfigTable strategy_table;
  ConfigTable model_table;
  ConfigTable transport_table;

  // Parses `path`, applies `overrides` ("section.key=value"), checks values.
  static FederationConfig load(const std::filesystem::path& path,
                               const std::vector<std::string>& overrides = {});

  std::int64_t client_rank(std::int64_t client_index) const;
  std::chrono::milliseconds heartbeat_interval() const {
    return milliseconds(heartbeat_interval_s);
  }
  std::chrono::milliseconds heartbeat_timeout() const { return milliseconds(heartbeat_timeout_s); }
  // Seconds as milliseconds, rounded up; ConfigError outside config_range::kSeconds.
  static std::chrono::milliseconds milliseconds(double seconds);
  static std::string client_id(std::int64_t client_index);
};

// The largest LoRA rank any target layer of `spec` can use: max over its
// layers of min(in, out). The bound of a configured rank, and of the rank a
// client registers with (ClientRoster).
std::int64_t max_useful_rank(const ModelSpec& spec);

// Checks the configured LoRA ranks against a model made for them: client
// `client_index`'s rank, or every client's (-1, the server's model, which
// configures them all). A rank above max_useful_rank is a ConfigError naming
// the client, the rank and the widest layer; one above a narrower layer's
// min(in, out) is said once (that layer's update has at most that rank).
void check_ranks_fit(const FederationConfig& config, const ModelSpec& spec,
                     std::int64_t client_index);

}  // namespace lorafed
