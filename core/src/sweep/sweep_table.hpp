#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/sweep/sweep_plan.hpp"

namespace lorafed {

struct SweepTables {
  std::string runs_csv;     // one row per point: its labels, seed and summary numbers
  std::string results_csv;  // one row per group: mean and std over its seeds of every number
  std::string results_md;   // the same for people: the headline metric, loss and traffic
};

// The metric a reader looks at first, from summary.json's keys: accuracy when
// the model reports it, else the first other final_ metric, else the loss.
std::string headline_metric(const std::set<std::string>& summary_keys);

// Tabulates a sweep from each point's summary.json (nullopt: the run failed).
// A table's numbers are summary.json's final_*, best_* (but not *_round),
// bytes_per_client_round and elapsed_s; spreads are sample standard
// deviations over seeds (docs/outputs.md §Sweeps).
SweepTables tabulate_sweep(const SweepPlan& plan,
                           const std::vector<std::optional<nlohmann::json>>& summaries);

}  // namespace lorafed
