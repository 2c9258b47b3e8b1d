#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lorafed {

// best_<metric> and best_<metric>_round over the evaluated rounds (round 0
// included), for the loss and each metric; spreads and counts left out.
class BestMetrics {
 public:
  void add(int round, const nlohmann::json& evaluation);
  nlohmann::json to_json() const;
  static BestMetrics from_json(const nlohmann::json& saved);
  nlohmann::json summary() const;

 private:
  struct Entry {
    double value;
    int round;
  };
  std::map<std::string, Entry> best_;
};

// What a run has measured so far: checkpointed after every round with the
// strategy's state, so a resumed run reports as if it had never stopped.
struct RunProgress {
  nlohmann::json base = nlohmann::json::object();  // round 0's evaluation
  nlohmann::json last = nlohmann::json::object();  // the latest evaluation
  nlohmann::json last_federated = nlohmann::json::object();
  BestMetrics best;
  std::vector<double> round_seconds;
  std::uint64_t bytes_down = 0;
  std::uint64_t bytes_up = 0;
  std::int64_t client_failures = 0;
  nlohmann::json accounting = nlohmann::json::object();  // Accounting::save()
  nlohmann::json privacy = nlohmann::json::object();     // the latest privacy_* metrics
  double elapsed_s = 0;

  nlohmann::json to_json() const;
  // Throws FormatError naming what is missing or of the wrong type.
  static RunProgress from_json(const nlohmann::json& saved);
};

}  // namespace lorafed
