#include "src/federation_config.hpp"

#include <spdlog/spdlog.h>

#include <fmt/ranges.h>

#include <set>

#include <mutex>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "src/rank_assignment.hpp"
#include "src/sdk/config_ranges.hpp"

namespace lorafed {
namespace {

using config_range::integer;
using config_range::Interval;
using config_range::number;
using config_range::seconds;

constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();
// Round numbers count up to `rounds` in an int, and travel as uint32.
constexpr std::int64_t kMaxRounds = 1'000'000'000;
constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
// Client ids, ranks and per-client state are held for every client.
constexpr std::int64_t kMaxClients = 1'000'000;
constexpr std::int64_t kMaxThreads = 1024;
constexpr std::int64_t kMinFrameBytes = 1024;
constexpr std::int64_t kMaxFrameBytes = std::int64_t{1} << 30;
constexpr double kMaxAlpha = 1e6;

std::string default_endpoint(const std::string& transport) {
  if (transport == "inproc") return "inproc://lorafed";
  return "tcp://127.0.0.1:7700";
}

std::string shape_text(const TargetLayer& layer) {
  return "'" + layer.name + "' (out " + std::to_string(layer.out_features) + " × in " +
         std::to_string(layer.in_features) + ")";
}

std::int64_t largest_rank(const TargetLayer& layer) {
  return std::min(layer.in_features, layer.out_features);
}

// Says once per process what a rank is clamped to on a layer narrower than it.
void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard lock(mutex);
  if (said.insert(message).second) spdlog::warn("{}", message);
}

}  // namespace

FederationConfig FederationConfig::load(const std::filesystem::path& path,
                                        const std::vector<std::string>& overrides) {
  FederationConfig config;
  config.source = path;
  config.document = ConfigTable::parse_file(path);
  for (const std::string& assignment : overrides) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw ConfigError("--set expects section.key=value, got '" + assignment + "'");
    }
    config.document.set_from_text(assignment.substr(0, equals), assignment.substr(equals + 1));
  }
  const ConfigTable& doc = config.document;

  const ConfigTable federation = doc.section("federation");
  config.rounds = static_cast<int>(integer(federation, "rounds", config.rounds, 1, kMaxRounds));
  config.num_clients = integer(federation, "num_clients", config.num_clients, 1, kMaxClients);
  // Any 64-bit integer; only its bits matter.
  config.seed = static_cast<std::uint64_t>(federation.get<std::int64_t>("seed", 0));
  config.fraction_fit =
      number(federation, "fraction_fit", config.fraction_fit, Interval{0, 1, true, false});
  config.min_fit_clients =
      integer(federation, "min_fit_clients", config.min_fit_clients, 1, config.num_clients);
  config.min_available_clients =
      integer(federation, "min_available_clients", config.num_clients, 1, config.num_clients);
  config.round_timeout_s = seconds(federation, "round_timeout_s", config.round_timeout_s);
  config.min_fit_results =
      integer(federation, "min_fit_results", config.min_fit_results, 1, config.num_clients);
  config.registration_timeout_s =
      seconds(federation, "registration_timeout_s", config.registration_timeout_s);
  config.evaluate_every =
      static_cast<int>(integer(federation, "evaluate_every", config.evaluate_every, 0, kMaxInt));
  config.output_dir = federation.get<std::string>("output_dir", "runs/" + path.stem().string());
  config.log_level = federation.get<std::string>("log_level", config.log_level);

  const ConfigTable lora = doc.section("lora");
  config.ranks = assign_ranks(lora, config.num_clients, config.seed);
  config.alpha = number(lora, "alpha", config.alpha, Interval{0, kMaxAlpha, true, false});

  config.train = TrainOptions::from_config(doc.section("train"));
  config.simulation_threads =
      integer(doc.section("simulation"), "threads", config.simulation_threads, 1, kMaxThreads);
  config.server_threads =
      integer(doc.section("server"), "threads", config.server_threads, 0, kMaxThreads);
  const ConfigTable client = doc.section("client");
  config.server_silence_timeout_s =
      seconds(client, "server_silence_timeout_s", config.server_silence_timeout_s);
  config.reconnect_backoff_s = seconds(client, "reconnect_backoff_s", config.reconnect_backoff_s);
  config.reconnect_backoff_max_s =
      seconds(client, "reconnect_backoff_max_s", config.reconnect_backoff_max_s);
  if (config.reconnect_backoff_max_s < config.reconnect_backoff_s) {
    throw_config_error(client, "reconnect_backoff_max_s", "must be at least reconnect_backoff_s");
  }
  const auto models = client.get<std::string>("models", "resident");
  if (models != "resident" && models != "on_demand") {
    throw_config_error(client, "models",
                       "is \"resident\" or \"on_demand\", got \"" + models + "\"");
  }
  config.models_on_demand = models == "on_demand";
  config.state_memory_mb =
      integer(client, "state_memory_mb", config.state_memory_mb, 0, std::int64_t{1} << 30);
  config.state_dir = client.get<std::string>("state_dir", "");

  const ConfigTable broker = doc.section("broker");
  config.broker_embedded = broker.get<bool>("embedded", config.broker_embedded);
  config.broker_server_endpoint =
      broker.get<std::string>("server_endpoint", config.broker_server_endpoint);
  config.heartbeat_interval_s =
      seconds(broker, "heartbeat_interval_s", config.heartbeat_interval_s);
  config.heartbeat_timeout_s = seconds(broker, "heartbeat_timeout_s", config.heartbeat_timeout_s);
  if (config.heartbeat_timeout_s < 2 * config.heartbeat_interval_s) {
    throw_config_error(broker, "heartbeat_timeout_s",
                       "must be at least twice heartbeat_interval_s, or live clients are lost "
                       "between two heartbeats");
  }
  config.privacy = PrivacyConfig::read(doc.section("privacy"), config.num_clients);
  config.sampling_seed = config.seed;
  if (config.privacy.enabled()) {
    config.sampling_seed = config.privacy.noise_seed
                               ? derive_seed(*config.privacy.noise_seed, {0x5a4d504cULL})
                               : secret_seed();
  }
  config.checkpoint = doc.section("checkpoint").get<bool>("enabled", config.checkpoint);
  config.export_rank = integer(doc.section("export"), "rank", 0, 0, kMaxInt);

  config.status_listen = doc.section("status").get<std::string>("listen", "");

  config.transport_table = doc.section("transport");
  const ConfigTable& transport = config.transport_table;
  config.transport_name = transport.get<std::string>("name", config.transport_name);
  config.endpoint = transport.get<std::string>("endpoint", default_endpoint(config.transport_name));
  config.encode.max_frame_bytes = static_cast<std::size_t>(
      integer(transport, "max_frame_bytes", 4 << 20, kMinFrameBytes, kMaxFrameBytes));
  config.limits.max_frame_bytes = std::max<std::size_t>(config.encode.max_frame_bytes, 1 << 20);
  try {
    config.encode.dtype =
        wire::wire_dtype_from_name(transport.get<std::string>("wire_dtype", "float32"));
  } catch (const ConfigError& error) {
    throw_config_error(transport, "wire_dtype", error.what());
  }
  config.limits.max_message_bytes = static_cast<std::uint64_t>(
      integer(transport, "max_message_bytes", std::int64_t{1} << 32, 1, kMaxInt64));

  config.strategy_table = doc.section("strategy");
  config.strategy_name = config.strategy_table.require<std::string>("name");
  config.model_table = doc.section("model");
  config.model_name = config.model_table.require<std::string>("name");
  return config;
}

int FederationConfig::server_thread_count() const {
  if (server_threads > 0) return static_cast<int>(server_threads);
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

std::chrono::milliseconds FederationConfig::milliseconds(double seconds) {
  // load() keeps every duration within config_range::kSeconds, so this only
  // guards other callers; rounding up keeps a positive duration positive.
  if (!config_range::kSeconds.contains(seconds)) {
    throw ConfigError(fmt::format("a duration of {:g} s is outside {} s", seconds,
                                  config_range::kSeconds.text()));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

std::int64_t max_useful_rank(const ModelSpec& spec) {
  std::int64_t largest = 0;
  for (const TargetLayer& layer : spec.targets) largest = std::max(largest, largest_rank(layer));
  return largest;
}

void check_ranks_fit(const FederationConfig& config, const ModelSpec& spec,
                     std::int64_t client_index) {
  if (spec.targets.empty()) return;
  const auto widest = std::max_element(
      spec.targets.begin(), spec.targets.end(),
      [](const TargetLayer& x, const TargetLayer& y) { return largest_rank(x) < largest_rank(y); });
  const std::int64_t first = client_index < 0 ? 0 : client_index;
  const std::int64_t last = client_index < 0 ? config.num_clients - 1 : client_index;
  for (std::int64_t index = first; index <= last; ++index) {
    const std::int64_t rank = config.client_rank(index);
    if (rank > largest_rank(*widest)) {
      throw ConfigError(fmt::format(
          "[lora] in {}: {} has LoRA rank {}, more than any LoRA layer of model '{}' takes: "
          "the widest, {}, takes at most min(in, out) = {}; lower the rank",
          config.source.string(), FederationConfig::client_id(index), rank, spec.model_id,
          shape_text(*widest), largest_rank(*widest)));
    }
  }
  if (client_index < 0 && config.export_rank > largest_rank(*widest)) {
    throw ConfigError(fmt::format(
        "[export] rank in {}: {} is more than any LoRA layer of model '{}' takes (the widest, "
        "{}, takes at most {}); lower it, or leave it out for the largest client rank",
        config.source.string(), config.export_rank, spec.model_id, shape_text(*widest),
        largest_rank(*widest)));
  }
  // A rank above a narrower layer's size still trains the wider layers; say
  // what the narrow one gets instead of clamping silently.
  for (const TargetLayer& layer : spec.targets) {
    std::set<std::int64_t> clamped;
    for (std::int64_t index = first; index <= last; ++index) {
      if (config.client_rank(index) > largest_rank(layer))
        clamped.insert(config.client_rank(index));
    }
    if (clamped.empty()) continue;
    warn_once(fmt::format(
        "LoRA rank{} {} exceed{} the size of layer {} of model '{}': the update of that layer has "
        "rank at most {} there",
        clamped.size() > 1 ? "s" : "", fmt::join(clamped, ", "), clamped.size() > 1 ? "" : "s",
        shape_text(layer), spec.model_id, largest_rank(layer)));
  }
}

std::int64_t FederationConfig::client_rank(std::int64_t client_index) const {
  return ranks.at(static_cast<std::size_t>(client_index));
}

std::string FederationConfig::client_id(std::int64_t client_index) {
  return "client-" + std::to_string(client_index);
}

}  // namespace lorafed
