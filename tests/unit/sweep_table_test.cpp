// The tables of `lorafed sweep` (docs/outputs.md §Sweeps): results.md shows
// shares of examples in percent, the CSV files keep summary.json's fractions.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "src/statistics.hpp"
#include "src/sweep/sweep_table.hpp"

using namespace lorafed;

namespace {

// One setting, fedhl, over seeds 1 and 2.
SweepPlan two_seed_plan() {
  SweepPlan plan;
  plan.axes = {"strategy.name"};
  plan.seeds = {1, 2};
  for (const std::int64_t seed : plan.seeds) {
    SweepPoint point;
    point.name = "fedhl-seed" + std::to_string(seed);
    point.labels = {{"strategy.name", "fedhl"}};
    point.seed = seed;
    point.group = "fedhl";
    plan.points.push_back(point);
  }
  return plan;
}

}  // namespace

TEST_CASE("a sweep's results.md shows exact match in percent, as accuracy", "[sweep]") {
  const SweepPlan plan = two_seed_plan();  // no [sweep] metric: exact_match is the headline
  const std::vector<std::optional<nlohmann::json>> summaries = {
      nlohmann::json{{"final_exact_match", 0.15},
                     {"best_exact_match", 0.17},
                     {"best_exact_match_round", 20},
                     {"final_federated_exact_match", 0.12},
                     {"final_loss", 1.25},
                     {"bytes_per_client_round", 1000}},
      nlohmann::json{{"final_exact_match", 0.11},
                     {"best_exact_match", 0.13},
                     {"best_exact_match_round", 12},
                     {"final_federated_exact_match", 0.14},
                     {"final_loss", 1.35},
                     {"bytes_per_client_round", 1000}}};
  const SweepTables tables = tabulate_sweep(plan, summaries);
  INFO(tables.results_md);
  CHECK(tables.results_md.find("| strategy.name | seeds | final exact_match % | best exact_match % "
                               "| final per-client exact_match % | final loss | "
                               "bytes / client / round |") != std::string::npos);
  // Means and sample standard deviations, ×100: 0.13 ± 0.04/√2, 0.15 ± 0.04/√2, 0.13 ± 0.02/√2.
  CHECK(tables.results_md.find("| fedhl | 2 | 13.00 ± 2.83 | 15.00 ± 2.83 | 13.00 ± 1.41 | 1.3 ± "
                               "0.071 | 1000 |") != std::string::npos);
  // The CSV keeps the fractions summary.json has.
  INFO(tables.results_csv);
  CHECK(tables.results_csv.find("final_exact_match_mean") != std::string::npos);
  CHECK(tables.results_csv.find(",0.13,") != std::string::npos);
}

TEST_CASE("a sweep's results.md shows accuracy in percent", "[sweep]") {
  const SweepPlan plan = two_seed_plan();
  const std::vector<std::optional<nlohmann::json>> summaries = {
      nlohmann::json{{"final_accuracy", 0.8}, {"best_accuracy", 0.8}, {"final_loss", 0.5}},
      std::nullopt};
  const SweepTables tables = tabulate_sweep(plan, summaries);
  INFO(tables.results_md);
  CHECK(tables.results_md.find("| final accuracy % | best accuracy % | final loss |") !=
        std::string::npos);
  CHECK(tables.results_md.find("| fedhl | 1 (1 failed) | 80.00 | 80.00 | 0.5 |") !=
        std::string::npos);
}

TEST_CASE("best values are the lowest loss, error and perplexity, the highest of the rest",
          "[sweep]") {
  for (const char* lower : {"loss", "relative_error", "perplexity", "federated_loss"})
    CHECK(lower_is_better(lower));
  for (const char* higher : {"accuracy", "exact_match", "federated_accuracy"})
    CHECK_FALSE(lower_is_better(higher));
}
