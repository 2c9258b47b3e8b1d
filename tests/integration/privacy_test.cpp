// Client-level differential privacy through `lorafed simulate` on
// tiny-fmnist (docs/privacy.md): the budget reported every round, in the
// log, metrics.jsonl and summary.json; reproducible noise with a seed;
// FedHL with adaptive clipping; local privacy; refused combinations.
#include <catch2/catch.hpp>

#include "integration/federation_runs.hpp"
#include "src/privacy/rdp_accountant.hpp"

using namespace lorafed::test;
using Catch::Matchers::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Run {
  int code;
  fs::path out;
  std::string log;
};

Run simulate_private(const std::string& name, std::vector<std::string> extra) {
  const fs::path out = fresh_dir("privacy-" + name);
  Process run(command("simulate", out, join({"--set", "transport.name=inproc"}, extra)),
              out / "simulate.log", kEnv);
  const auto code = run.wait(std::chrono::seconds(300));
  REQUIRE(code.has_value());
  return {*code, out, read_file(out / "simulate.log")};
}

// C small enough that the noise (zC/3 per factor entry) leaves 3 clients
// a model that trains: these tests are about the mechanism, not accuracy.
const std::vector<std::string> kCentral = {
    "--set", "privacy.mode=central",         "--set", "privacy.clip_norm=0.01",
    "--set", "privacy.noise_multiplier=1.0", "--set", "privacy.noise_seed=5",
    "--set", "strategy.weighting=uniform"};

// strategy_privacy_epsilon of each round record, in order.
std::vector<double> epsilons(const fs::path& out) {
  std::vector<double> values;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round" && line.contains("strategy_privacy_epsilon")) {
      values.push_back(line["strategy_privacy_epsilon"].get<double>());
    }
  }
  return values;
}

// ε after k rounds in which every one of the 3 clients took part: q = 1.
double expected_epsilon(int rounds, double z, double delta) {
  lorafed::RdpAccountant accountant;
  for (int round = 0; round < rounds; ++round) accountant.add(1.0, z);
  return accountant.epsilon(delta);
}

}  // namespace

TEST_CASE("DP-FedAvg reports the privacy spent after every round, and its seed reproduces it",
          "[federation][privacy]") {
  const Run first = simulate_private("fedavg", kCentral);
  INFO(first.log);
  REQUIRE(first.code == 0);
  const json summary = read_summary(first.out);
  REQUIRE(summary["client_failures"] == 0);
  const std::vector<double> spent = epsilons(first.out);
  REQUIRE(spent.size() == 3);
  for (int round = 1; round <= 3; ++round) {
    CHECK(spent[round - 1] == Approx(expected_epsilon(round, 1.0, 1e-5)));
  }
  CHECK_THAT(first.log, Contains("privacy ε") && Contains("(δ 1e-05)"));
  CHECK(summary["privacy_epsilon"].get<double>() == Approx(spent.back()));
  CHECK(summary["privacy_delta"] == 1e-5);

  const Run again = simulate_private("fedavg-again", kCentral);
  REQUIRE(again.code == 0);
  CHECK(read_summary(again.out)["final_loss"] == summary["final_loss"]);
  const Run other =
      simulate_private("fedavg-other-seed", join(kCentral, {"--set", "privacy.noise_seed=6"}));
  REQUIRE(other.code == 0);
  CHECK(read_summary(other.out)["final_loss"] != summary["final_loss"]);
}

TEST_CASE("DP-FedHL at heterogeneous ranks with adaptive clipping, and local privacy",
          "[federation][privacy]") {
  const Run fedhl = simulate_private(
      "fedhl",
      join(kCentral, {"--set", "strategy.name=fedhl", "--set", "strategy.weighting=truncation",
                      "--set", "lora.ranks=[2, 4, 8]", "--set", "privacy.adaptive_clipping=true"}));
  INFO(fedhl.log);
  REQUIRE(fedhl.code == 0);
  REQUIRE(read_summary(fedhl.out)["client_failures"] == 0);
  std::vector<double> clip_norms;
  for (const json& line : read_metrics(fedhl.out)) {
    if (line["type"] == "round" && line.contains("strategy_privacy_clip_norm")) {
      clip_norms.push_back(line["strategy_privacy_clip_norm"].get<double>());
      CHECK(line.contains("strategy_privacy_unclipped_fraction"));
    }
  }
  REQUIRE(clip_norms.size() == 3);
  CHECK(clip_norms[0] == 0.01);
  CHECK(clip_norms[1] != clip_norms[0]);  // C moved towards the median norm
  CHECK(epsilons(fedhl.out).back() == Approx(expected_epsilon(3, 1.0, 1e-5)));

  const Run local = simulate_private(
      "local", {"--set", "privacy.mode=local", "--set", "privacy.noise_multiplier=2.0", "--set",
                "privacy.clip_norm=0.01", "--set", "strategy.weighting=uniform"});
  INFO(local.log);
  REQUIRE(local.code == 0);
  REQUIRE(read_summary(local.out)["client_failures"] == 0);
  CHECK(epsilons(local.out).back() == Approx(expected_epsilon(3, 2.0, 1e-5)));
  // Clients report no example counts or training loss under local privacy.
  for (const json& line : read_metrics(local.out)) {
    if (line["type"] == "client" && line["phase"] == "fit") {
      CHECK(line["num_examples"] == 0);
      CHECK(!line.contains("train_loss"));
    }
  }
}

TEST_CASE("privacy refuses what it could not make private, before any round",
          "[federation][privacy][config-errors]") {
  const Run data_weights = simulate_private("refused-weights", {"--set", "privacy.mode=central"});
  CHECK(data_weights.code == 2);
  CHECK_THAT(data_weights.log, Contains("weighting = \"data\""));
  const Run scaffold =
      simulate_private("refused-scaffold", join(kCentral, {"--set", "strategy.name=scaffold"}));
  CHECK(scaffold.code == 2);
  CHECK_THAT(scaffold.log, Contains("strategy 'scaffold' cannot be made differentially private"));
  const Run delta =
      simulate_private("refused-delta", join(kCentral, {"--set", "privacy.delta=0.5"}));
  CHECK(delta.code == 2);
  CHECK_THAT(delta.log, Contains("[privacy] key 'delta'"));
}
