#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lorafed/model_backend.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/transport.hpp"
#include "src/federation_config.hpp"
#include "src/metrics_writer.hpp"
#include "src/server/accounting.hpp"
#include "src/server/checkpoint.hpp"
#include "src/server/status_board.hpp"
#include "src/wire/messages.hpp"

namespace lorafed {

// The server loop (docs/architecture.md, "one round"): waits for clients to
// register, then each round samples clients, sends each its instruction,
// collects results until all arrived or the deadline passed, lets the
// strategy aggregate, and evaluates the global model (or, for a personalised
// strategy, every client's own model). A client that fails,
// sends garbage or misses the deadline is recorded and the round goes on.
class Orchestrator {
 public:
  Orchestrator(const FederationConfig& config, std::shared_ptr<Strategy> strategy,
               std::shared_ptr<ModelBackend> evaluator, Channel& channel, MetricsWriter& metrics);

  // Continue after the checkpoint's round instead of starting afresh.
  void set_resume(Checkpoint checkpoint) { resume_ = std::move(checkpoint); }
  // What a checkpoint must match to be resumed with this configuration.
  static nlohmann::json identity(const FederationConfig& config, const ModelSpec& spec);

  // Where to publish progress for the status endpoint (may be null).
  void set_status_board(StatusBoard* board) { status_ = board; }

  // Runs every round, tells clients to shut down, returns the summary
  // (also written to <out>/summary.json).
  nlohmann::json run();

 private:
  using Clock = std::chrono::steady_clock;

  struct Client {
    ClientInfo info;
    bool alive = true;  // false once the broker reported it lost, until it registers again
  };
  struct Reply {
    wire::Envelope envelope;
    std::uint64_t bytes = 0;
    double seconds = 0;  // since the instruction was sent
  };
  struct Collected {
    std::map<std::string, Reply> replies;  // by client id
    std::vector<Failure> failures;
  };

  nlohmann::json run_rounds();
  void shutdown_clients(const std::string& reason);
  void await_registrations();
  // Receives until `wanted` clients are alive or registration_timeout_s
  // passed; returns how many are alive.
  std::int64_t await_clients(std::int64_t wanted);
  std::vector<std::string> alive_ids() const;
  void handle_register(const wire::Envelope& envelope);
  // Receives one message until `deadline`; decodes it, answering undecodable
  // ones with an Error. Registrations and the broker's reports of lost
  // clients are handled on the way; a heartbeat goes to the broker when due.
  struct Received {
    wire::Envelope envelope;
    std::uint64_t bytes = 0;
  };
  std::optional<Received> receive_until(Clock::time_point deadline);
  std::uint64_t send(const std::string& client_id, wire::Envelope envelope);
  void send_error(const std::string& client_id, wire::ErrorCode code, const std::string& text);
  // Waits for one reply of the wanted kind to each of the `sent` instructions
  // (by client id). A client that registers again meanwhile (it restarted,
  // or the broker did and lost what it held) is sent its instruction again.
  Collected collect(int round, const std::map<std::string, wire::Envelope>& sent,
                    std::size_t wanted_body, Clock::time_point sent_at);

  nlohmann::json fit_round(int round);
  nlohmann::json evaluate_round(int round);
  // Writes <out>/peft/global (and peft/rank-<r> for each client rank when
  // ranks differ) as PEFT adapters; returns the folders written.
  nlohmann::json export_adapters();
  // The server's evaluation of the global model: {"loss": …, metric: …}.
  nlohmann::json evaluate_global();
  std::vector<ClientInfo> infos(const std::vector<std::string>& client_ids) const;
  void publish_clients();

  const FederationConfig& config_;
  std::shared_ptr<Strategy> strategy_;
  std::shared_ptr<ModelBackend> evaluator_;
  Channel& channel_;
  MetricsWriter& metrics_;
  ModelSpec spec_;
  std::map<std::string, Client> clients_;
  std::map<std::string, std::int64_t> client_rank_sent_;  // this round's adapter rank per client
  std::uint64_t bytes_down_ = 0;
  std::uint64_t bytes_up_ = 0;
  std::int64_t failures_total_ = 0;
  std::set<std::string> failed_last_;  // clients whose last fit instruction failed
  std::set<std::string> registered_;   // registrations accepted since collect() last looked
  Accounting accounting_;
  StatusBoard* status_ = nullptr;
  Clock::time_point next_heartbeat_{};
  std::optional<Checkpoint> resume_;
};

}  // namespace lorafed
