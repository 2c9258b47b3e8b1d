#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "lorafed/strategy.hpp"

namespace lorafed {

// Communication and computation per client per round (docs/algorithms.md
// §Accounting): bytes each client moved, the training FLOPs it reported
// ("train_flops"), and what exchanging its full local model instead would
// have moved (4 bytes per "local_parameters" it reported, each way).
class Accounting {
 public:
  using BytesByClient = std::map<std::string, std::uint64_t>;

  // Folds in one round's fit; returns the round's figures for its record.
  nlohmann::json add_round(std::span<const FitResult> results, const BytesByClient& bytes_down,
                           const BytesByClient& bytes_up);
  // Means over the rounds so far, for summary.json.
  nlohmann::json summary() const;
  // The running sums, for checkpoints.
  nlohmann::json save() const;
  void restore(const nlohmann::json& saved);

 private:
  struct Mean {
    double sum = 0;
    std::int64_t count = 0;
    void add(double value) {
      sum += value;
      ++count;
    }
    double value() const { return count == 0 ? 0.0 : sum / static_cast<double>(count); }
  };
  Mean bytes_per_client_;
  Mean flops_per_client_;
  Mean full_model_bytes_per_client_;
};

}  // namespace lorafed
