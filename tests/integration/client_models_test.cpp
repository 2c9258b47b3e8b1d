// [client] models = "on_demand": a client's backend exists only while it
// works, its state waits in the state store (here always spilled to disk),
// and the federation's numbers are those of resident backends.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// `lorafed simulate CONFIG` over inproc, resident or on demand with a zero
// memory budget; returns the summary and leaves the log in `out`.
json simulate(const std::string& config, const fs::path& out, const std::vector<std::string>& extra,
              bool on_demand) {
  std::vector<std::string> argv = {
      LORAFED_EXECUTABLE,         "simulate", config, "--out", out.string(), "--set",
      "transport.name=\"inproc\""};
  argv = join(argv, extra);
  if (on_demand) {
    argv = join(argv, {"--set", "client.models=\"on_demand\"", "--set", "client.state_memory_mb=0",
                       "--set", "client.state_dir=\"" + (out / "state").string() + "\""});
  }
  Process run(argv, out / "simulate.log", kEnv);
  const auto code = run.wait(std::chrono::seconds(300));
  INFO(read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  return read_summary(out);
}

void check_same_run(const json& resident, const json& on_demand) {
  INFO("resident " << resident.dump(2) << "\non demand " << on_demand.dump(2));
  CHECK(on_demand["client_failures"] == 0);
  CHECK(on_demand["final_accuracy"].get<double>() == resident["final_accuracy"].get<double>());
  CHECK(on_demand["final_loss"].get<double>() == resident["final_loss"].get<double>());
}

}  // namespace

TEST_CASE("flora with client models on demand, every merged base spilled, gives the resident run",
          "[client_models]") {
  // FLoRA merges every round's stack into each client's base: that base is
  // the state that must survive between rounds.
  const std::vector<std::string> flora = {"--set", "strategy.name=\"flora\"", "--set",
                                          "lora.ranks=[2, 4, 8]"};
  const json resident = simulate(kConfig, fresh_dir("models-resident"), flora, false);
  const fs::path out = fresh_dir("models-on-demand");
  const json on_demand = simulate(kConfig, out, flora, true);
  check_same_run(resident, on_demand);
  CHECK_THAT(
      read_file(out / "simulate.log"),
      Catch::Matchers::Contains("client models on demand: state kept in memory up to 0 MiB"));
  // The spill folder existed while the clients did and is gone with them.
  REQUIRE(fs::exists(out / "state"));
  CHECK(fs::is_empty(out / "state"));
  // The states went through the disk: written after every round, read
  // back before the next.
  CHECK_THAT(read_file(out / "simulate.log"),
             Catch::Matchers::Matches("(.|\n)*client state: 3 clients, spilled [1-9][0-9]* times, "
                                      "read back [1-9][0-9]* times(.|\n)*"));
}

TEST_CASE(
    "pfedlora with client models on demand, every local model spilled, gives the resident run",
    "[client_models]") {
  // pFedLoRA trains each client's own cnnzoo model: its local parameters
  // are the state.
  const std::string config = std::string(LORAFED_TEST_CONFIG_DIR) + "/tiny-pfedlora.toml";
  const std::vector<std::string> shorter = {"--set", "federation.rounds=4"};
  const json resident = simulate(config, fresh_dir("pfedlora-resident"), shorter, false);
  const fs::path out = fresh_dir("pfedlora-on-demand");
  const json on_demand = simulate(config, out, shorter, true);
  CHECK(on_demand["personalised"] == true);
  check_same_run(resident, on_demand);
  CHECK_THAT(read_file(out / "simulate.log"),
             Catch::Matchers::Contains("client state: 5 clients, spilled"));
}
