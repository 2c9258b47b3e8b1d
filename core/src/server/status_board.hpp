#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <mutex>
#include <string>

namespace lorafed {

// What the server's status endpoint shows (docs/outputs.md §Status
// endpoint): the orchestrator writes it, HTTP threads read it.
class StatusBoard {
 public:
  StatusBoard(std::string strategy, std::string model, int rounds);

  void set_state(const std::string& state);  // "waiting for clients", "running", "finished"
  void set_clients(std::int64_t registered, std::int64_t alive);
  // A finished round: its metrics.jsonl record, and the totals so far.
  void record_round(const nlohmann::json& record, std::uint64_t bytes_down, std::uint64_t bytes_up,
                    std::int64_t failures);

  nlohmann::json json() const;
  // Prometheus text exposition format 0.0.4.
  std::string prometheus() const;

 private:
  mutable std::mutex mutex_;
  std::string strategy_, model_;
  int rounds_;
  std::string state_ = "starting";
  int round_ = 0;
  std::int64_t registered_ = 0, alive_ = 0, failures_ = 0;
  std::uint64_t bytes_down_ = 0, bytes_up_ = 0;
  nlohmann::json latest_ = nlohmann::json::object();
};

}  // namespace lorafed
