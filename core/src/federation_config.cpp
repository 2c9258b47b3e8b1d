#include "src/federation_config.hpp"

#include <algorithm>

#include "lorafed/error.hpp"
#include "src/rank_assignment.hpp"

namespace lorafed {
namespace {

template <class T>
T positive(const ConfigTable& table, std::string_view key, T fallback) {
  const T value = table.get<T>(key, fallback);
  if (!(value > 0))
    throw_config_error(table, key, "must be positive, got " + std::to_string(value));
  return value;
}

std::string default_endpoint(const std::string& transport) {
  if (transport == "inproc") return "inproc://lorafed";
  return "tcp://127.0.0.1:7700";
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
  config.rounds = static_cast<int>(positive<std::int64_t>(federation, "rounds", config.rounds));
  config.num_clients = positive<std::int64_t>(federation, "num_clients", config.num_clients);
  config.seed = static_cast<std::uint64_t>(federation.get<std::int64_t>("seed", 0));
  config.fraction_fit = positive<double>(federation, "fraction_fit", config.fraction_fit);
  if (config.fraction_fit > 1) throw_config_error(federation, "fraction_fit", "must be at most 1");
  config.min_fit_clients =
      positive<std::int64_t>(federation, "min_fit_clients", config.min_fit_clients);
  config.min_available_clients =
      federation.get<std::int64_t>("min_available_clients", config.num_clients);
  if (config.min_available_clients < 1 || config.min_available_clients > config.num_clients) {
    throw_config_error(federation, "min_available_clients", "must be between 1 and num_clients");
  }
  if (config.min_fit_clients > config.num_clients) {
    throw_config_error(federation, "min_fit_clients", "must not exceed num_clients");
  }
  config.round_timeout_s = positive<double>(federation, "round_timeout_s", config.round_timeout_s);
  config.min_fit_results = positive<std::int64_t>(federation, "min_fit_results", 1);
  if (config.min_fit_results > config.num_clients) {
    throw_config_error(federation, "min_fit_results", "must not exceed num_clients");
  }
  config.registration_timeout_s =
      positive<double>(federation, "registration_timeout_s", config.registration_timeout_s);
  config.evaluate_every = static_cast<int>(federation.get<std::int64_t>("evaluate_every", 1));
  if (config.evaluate_every < 0)
    throw_config_error(federation, "evaluate_every", "must not be negative");
  config.output_dir = federation.get<std::string>("output_dir", "runs/" + path.stem().string());
  config.log_level = federation.get<std::string>("log_level", config.log_level);

  const ConfigTable lora = doc.section("lora");
  config.ranks = assign_ranks(lora, config.num_clients, config.seed);
  config.alpha = positive<double>(lora, "alpha", config.alpha);

  config.train = TrainOptions::from_config(doc.section("train"));
  config.simulation_threads = positive<std::int64_t>(doc.section("simulation"), "threads", 2);
  const ConfigTable client = doc.section("client");
  config.server_silence_timeout_s =
      positive<double>(client, "server_silence_timeout_s", config.server_silence_timeout_s);
  config.reconnect_backoff_s =
      positive<double>(client, "reconnect_backoff_s", config.reconnect_backoff_s);
  config.reconnect_backoff_max_s =
      positive<double>(client, "reconnect_backoff_max_s", config.reconnect_backoff_max_s);
  if (config.reconnect_backoff_max_s < config.reconnect_backoff_s) {
    throw_config_error(client, "reconnect_backoff_max_s", "must be at least reconnect_backoff_s");
  }

  const ConfigTable broker = doc.section("broker");
  config.broker_embedded = broker.get<bool>("embedded", config.broker_embedded);
  config.broker_server_endpoint =
      broker.get<std::string>("server_endpoint", config.broker_server_endpoint);
  config.heartbeat_interval_s =
      positive<double>(broker, "heartbeat_interval_s", config.heartbeat_interval_s);
  config.heartbeat_timeout_s =
      positive<double>(broker, "heartbeat_timeout_s", config.heartbeat_timeout_s);
  if (config.heartbeat_timeout_s < 2 * config.heartbeat_interval_s) {
    throw_config_error(broker, "heartbeat_timeout_s",
                       "must be at least twice heartbeat_interval_s, or live clients are lost "
                       "between two heartbeats");
  }
  config.checkpoint = doc.section("checkpoint").get<bool>("enabled", config.checkpoint);

  config.status_listen = doc.section("status").get<std::string>("listen", "");

  config.transport_table = doc.section("transport");
  const ConfigTable& transport = config.transport_table;
  config.transport_name = transport.get<std::string>("name", config.transport_name);
  config.endpoint = transport.get<std::string>("endpoint", default_endpoint(config.transport_name));
  const auto max_frame = positive<std::int64_t>(transport, "max_frame_bytes", 4 << 20);
  if (max_frame < 1024) throw_config_error(transport, "max_frame_bytes", "must be at least 1024");
  config.encode.max_frame_bytes = static_cast<std::size_t>(max_frame);
  config.limits.max_frame_bytes = std::max<std::size_t>(config.encode.max_frame_bytes, 1 << 20);
  try {
    config.encode.dtype =
        wire::wire_dtype_from_name(transport.get<std::string>("wire_dtype", "float32"));
  } catch (const ConfigError& error) {
    throw_config_error(transport, "wire_dtype", error.what());
  }
  config.limits.max_message_bytes = static_cast<std::uint64_t>(
      positive<std::int64_t>(transport, "max_message_bytes", std::int64_t{1} << 32));

  config.strategy_table = doc.section("strategy");
  config.strategy_name = config.strategy_table.require<std::string>("name");
  config.model_table = doc.section("model");
  config.model_name = config.model_table.require<std::string>("name");
  return config;
}

std::int64_t FederationConfig::client_rank(std::int64_t client_index) const {
  return ranks.at(static_cast<std::size_t>(client_index));
}

std::string FederationConfig::client_id(std::int64_t client_index) {
  return "client-" + std::to_string(client_index);
}

}  // namespace lorafed
