#include "src/server/status_board.hpp"

#include <fmt/format.h>

namespace lorafed {
namespace {

// A Prometheus metric name part: [a-zA-Z0-9_], anything else becomes '_'.
std::string metric_name(const std::string& text) {
  std::string name = text;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return name;
}

void gauge(std::string& out, const std::string& name, const std::string& help, double value,
           const char* type = "gauge") {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

}  // namespace

StatusBoard::StatusBoard(std::string strategy, std::string model, int rounds)
    : strategy_(std::move(strategy)), model_(std::move(model)), rounds_(rounds) {}

void StatusBoard::set_state(const std::string& state) {
  const std::lock_guard lock(mutex_);
  state_ = state;
}

void StatusBoard::set_clients(std::int64_t registered, std::int64_t alive) {
  const std::lock_guard lock(mutex_);
  registered_ = registered;
  alive_ = alive;
}

void StatusBoard::record_round(const nlohmann::json& record, std::uint64_t bytes_down,
                               std::uint64_t bytes_up, std::int64_t failures) {
  const std::lock_guard lock(mutex_);
  round_ = record.value("round", round_);
  latest_ = record;
  bytes_down_ = bytes_down;
  bytes_up_ = bytes_up;
  failures_ = failures;
}

nlohmann::json StatusBoard::json() const {
  const std::lock_guard lock(mutex_);
  return {{"state", state_},           {"strategy", strategy_},
          {"model", model_},           {"round", round_},
          {"rounds", rounds_},         {"clients_registered", registered_},
          {"clients_alive", alive_},   {"client_failures", failures_},
          {"bytes_down", bytes_down_}, {"bytes_up", bytes_up_},
          {"latest", latest_}};
}

std::string StatusBoard::prometheus() const {
  const std::lock_guard lock(mutex_);
  std::string out;
  gauge(out, "lorafed_round", "The last round finished (0: none yet).", round_);
  gauge(out, "lorafed_rounds", "The rounds configured.", rounds_);
  gauge(out, "lorafed_clients_registered", "Clients registered with the server.", registered_);
  gauge(out, "lorafed_clients_alive", "Registered clients whose last instruction did not fail.",
        alive_);
  gauge(out, "lorafed_client_failures_total", "Sampled clients that returned nothing usable.",
        static_cast<double>(failures_), "counter");
  gauge(out, "lorafed_bytes_down_total", "Encoded bytes sent to clients.",
        static_cast<double>(bytes_down_), "counter");
  gauge(out, "lorafed_bytes_up_total", "Encoded bytes received from clients.",
        static_cast<double>(bytes_up_), "counter");
  // The latest round's numbers: the global evaluation and the round's own.
  for (const auto& [key, value] : latest_.items()) {
    if (!value.is_number() || key == "round") continue;
    gauge(out, "lorafed_" + metric_name(key), "The latest round's " + key + ".",
          value.get<double>());
  }
  if (latest_.contains("federated_evaluation")) {
    for (const auto& [key, value] : latest_["federated_evaluation"].items()) {
      if (!value.is_number()) continue;
      gauge(out, "lorafed_federated_" + metric_name(key),
            "The latest federated evaluation's " + key + " (clients' own models).",
            value.get<double>());
    }
  }
  return out;
}

}  // namespace lorafed
