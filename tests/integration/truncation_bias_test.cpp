// The truncation-bias effect FedHL removes (docs/algorithms.md §FedHL), on the
// synthetic linear task whose optimum ΔW* has full rank 16 while every client
// trains rank 2 or 4.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

#include "integration/process.hpp"

using lorafed::test::Process;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// relative_error = ||ΔW_t − ΔW*||_F / ||ΔW*||_F per round, from a simulate run.
std::map<int, double> error_per_round(const std::string& strategy) {
  const fs::path out = fs::path(LORAFED_TEST_WORK_DIR) / ("bias-" + strategy);
  fs::remove_all(out);
  fs::create_directories(out);
  Process run(
      {LORAFED_EXECUTABLE, "simulate", std::string(LORAFED_TEST_CONFIG_DIR) + "/linear-bias.toml",
       "--set", "strategy.name=" + strategy, "--out", out.string()},
      out / "simulate.log");
  const auto code = run.wait(std::chrono::seconds(120));
  INFO(lorafed::test::read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  std::map<int, double> errors;
  std::istringstream lines(lorafed::test::read_file(out / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json record = json::parse(line);
    if (record["type"] == "round" && record.contains("relative_error")) {
      errors[record["round"].get<int>()] = record["relative_error"].get<double>();
    }
  }
  return errors;
}

}  // namespace

TEST_CASE("fedhl approaches the full-rank optimum where flexlora and hetlora stall", "[bias]") {
  const auto fedhl = error_per_round("fedhl");
  const auto flexlora = error_per_round("flexlora");
  const auto hetlora = error_per_round("hetlora");
  REQUIRE(fedhl.size() == 61);
  REQUIRE(flexlora.size() == 61);
  REQUIRE(hetlora.size() == 61);
  INFO("round 10: fedhl " << fedhl.at(10) << ", flexlora " << flexlora.at(10) << ", hetlora "
                          << hetlora.at(10));
  INFO("round 60: fedhl " << fedhl.at(60) << ", flexlora " << flexlora.at(60) << ", hetlora "
                          << hetlora.at(60));
  // After the same rounds FedHL is clearly closer to ΔW*.
  CHECK(fedhl.at(60) < 0.8 * flexlora.at(60));
  CHECK(fedhl.at(60) < 0.8 * hetlora.at(60));
  // FedHL keeps improving from round 10 on; the biased baselines have stalled.
  CHECK(fedhl.at(10) - fedhl.at(60) > 0.05);
  CHECK(std::abs(flexlora.at(10) - flexlora.at(60)) < 0.02);
  CHECK(std::abs(hetlora.at(10) - hetlora.at(60)) < 0.02);
}
