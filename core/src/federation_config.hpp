#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lorafed/config.hpp"
#include "lorafed/train_options.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

// A whole federation's configuration: the framework's own tables, parsed and
// checked here, and the plugins' tables handed on untouched (DESIGN §3).
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

  // [client]
  double server_silence_timeout_s = 600;

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
  static std::string client_id(std::int64_t client_index);
};

}  // namespace lorafed
