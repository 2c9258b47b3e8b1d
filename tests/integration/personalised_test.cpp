// pFedLoRA against Standalone on the same clients, models and data
// (docs/algorithms.md §pFedLoRA), through `lorafed simulate`.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "integration/process.hpp"

using lorafed::test::Process;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json simulate(const std::string& strategy) {
  const fs::path out = fs::path(LORAFED_TEST_WORK_DIR) / ("personalised-" + strategy);
  fs::remove_all(out);
  fs::create_directories(out);
  Process run(
      {LORAFED_EXECUTABLE, "simulate", std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-pfedlora.toml",
       "--set", "strategy.name=" + strategy, "--out", out.string()},
      out / "simulate.log");
  const auto code = run.wait(std::chrono::seconds(300));
  INFO(lorafed::test::read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  return json::parse(lorafed::test::read_file(out / "summary.json"));
}

}  // namespace

TEST_CASE("pfedlora's personalised accuracy beats standalone training", "[personalised]") {
  const json pfedlora = simulate("pfedlora");
  const json standalone = simulate("standalone");
  const double pfedlora_accuracy = pfedlora["final_accuracy"].get<double>();
  const double standalone_accuracy = standalone["final_accuracy"].get<double>();
  INFO("pfedlora " << pfedlora_accuracy << ", standalone " << standalone_accuracy);
  CHECK(pfedlora["personalised"] == true);
  CHECK(pfedlora_accuracy > standalone_accuracy);
  // Both learnt: two classes per client, so 0.5 is chance.
  CHECK(standalone_accuracy > 0.6);
  // Only the adapter moves: rank 4 × (500 + 10) floats each way, a few
  // hundred bytes of envelope, against megabytes for the full local models.
  const double moved = pfedlora["bytes_per_client_round"].get<double>();
  CHECK(moved > 2 * 4 * 4 * 510);
  CHECK(moved < 2 * 4 * 4 * 510 + 4096);
  CHECK(pfedlora["communication_saving"].get<double>() > 100);
  // Standalone sends no tensor at all.
  CHECK(standalone["bytes_per_client_round"].get<double>() < 2048);
}

TEST_CASE("lgfedavg moves the classifier head through the wire", "[personalised]") {
  const json lgfedavg = simulate("lgfedavg");
  CHECK(lgfedavg["final_accuracy"].get<double>() > 0.5);
  // fc3: 5,010 floats. Round 1 sends nothing down; later rounds move it both ways.
  const double head_bytes = 4 * 5010;
  const double rounds = lgfedavg["rounds"].get<double>();
  const double expected = head_bytes * (2 * rounds - 1) / rounds;
  CHECK(lgfedavg["bytes_per_client_round"].get<double>() > expected);
  CHECK(lgfedavg["bytes_per_client_round"].get<double>() < expected + 4096);
}
