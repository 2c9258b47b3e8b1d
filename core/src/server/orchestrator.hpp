#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "lorafed/model_backend.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/transport.hpp"
#include "src/federation_config.hpp"
#include "src/metrics_writer.hpp"
#include "src/server/accounting.hpp"
#include "src/server/checkpoint.hpp"
#include "src/server/client_roster.hpp"
#include "src/server/round_collector.hpp"
#include "src/server/run_progress.hpp"
#include "src/server/run_recorder.hpp"
#include "src/server/server_heartbeat.hpp"
#include "src/server/server_link.hpp"
#include "src/server/status_board.hpp"
#include "src/stop_signal.hpp"

namespace lorafed {

// The server loop (docs/architecture.md, "One round"): waits for clients to
// register, then each round samples clients, has the strategy configure
// their instructions, collects the replies (RoundCollector), lets the
// strategy aggregate, and evaluates the global model (or, for a personalised
// strategy, every client's own model). Who may take part is the roster's
// decision; what is written, the recorder's.
class Orchestrator {
 public:
  // `stop`, when given, interrupts the run once set (SIGINT, SIGTERM): run()
  // then throws Interrupted after the last complete round's records.
  Orchestrator(const FederationConfig& config, std::shared_ptr<Strategy> strategy,
               std::shared_ptr<ModelBackend> evaluator, Channel& channel, MetricsWriter& metrics,
               const std::atomic<bool>* stop = nullptr);

  // Continue after the checkpoint's round instead of starting afresh.
  void set_resume(Checkpoint checkpoint) { resume_ = std::move(checkpoint); }
  // Where to publish progress for the status endpoint (may be null).
  void set_status_board(StatusBoard* board) { status_ = board; }

  // Runs every round, tells clients to shut down, returns the summary
  // (also written to <out>/summary.json).
  nlohmann::json run();

 private:
  using Clock = std::chrono::steady_clock;

  nlohmann::json run_rounds();
  void shutdown_clients(const std::string& reason);
  void await_registrations();
  // Receives until `wanted` clients are alive or registration_timeout_s
  // passed; returns how many are alive.
  std::int64_t await_clients(std::int64_t wanted);
  void throw_if_interrupted(const char* where) const;

  nlohmann::json fit_round(int round);
  nlohmann::json evaluate_round(int round);
  // The server's evaluation of the global model: {"loss": …, metric: …}.
  nlohmann::json evaluate_global();
  void publish_clients();

  const FederationConfig& config_;
  std::shared_ptr<Strategy> strategy_;
  std::shared_ptr<ModelBackend> evaluator_;
  ModelSpec spec_;
  const std::atomic<bool>* stop_;
  ClientRoster roster_;
  ServerLink link_;
  ServerHeartbeat heartbeat_;  // after link_: stops before it goes
  RoundCollector collector_;
  RunRecorder recorder_;
  RunProgress progress_;
  Accounting accounting_;
  std::set<std::string> failed_last_;  // clients whose last fit instruction failed
  StatusBoard* status_ = nullptr;
  std::optional<Checkpoint> resume_;
};

}  // namespace lorafed
