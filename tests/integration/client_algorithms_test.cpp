// Client-side algorithms through `lorafed simulate` on tiny-fmnist: FedProx,
// Ditto and SCAFFOLD against FedAvg on the same clients and data
// (docs/algorithms.md §FedProx, §Ditto, §SCAFFOLD).
#include <catch2/catch.hpp>

#include "integration/federation_runs.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path out_dir(const std::string& name) {
  return kWork / ("client-algorithms-" + name);
}

// A strong label skew, so that a client's own model and the global one differ.
json simulate_skewed(const std::string& name, std::vector<std::string> extra) {
  const fs::path out = fresh_dir(out_dir(name).filename().string());
  Process run(
      command(
          "simulate", out,
          join({"--set", "transport.name=inproc", "--set", "model.dirichlet_alpha=0.05"}, extra)),
      out / "simulate.log", kEnv);
  const auto code = run.wait(std::chrono::seconds(300));
  INFO(read_file(out / "simulate.log"));
  REQUIRE(code == 0);
  return read_summary(out);
}

// The mean over clients of their accuracy in the last round's evaluation.
double mean_client_accuracy(const std::string& name, int round) {
  double sum = 0;
  int clients = 0;
  for (const json& line : read_metrics(out_dir(name))) {
    if (line["type"] == "client" && line["phase"] == "evaluate" && line["round"] == round) {
      sum += line["accuracy"].get<double>();
      ++clients;
    }
  }
  REQUIRE(clients == 3);
  return sum / clients;
}

}  // namespace

TEST_CASE(
    "fedprox with mu = 0 is fedavg, and ditto's global model is fedavg's while its personal "
    "models do better on their own clients",
    "[federation][fedprox][ditto]") {
  const json fedavg = simulate_skewed("fedavg", {"--set", "strategy.evaluate_clients=true"});
  const json prox0 =
      simulate_skewed("fedprox-0", {"--set", "strategy.name=fedprox", "--set", "strategy.mu=0.0",
                                    "--set", "strategy.evaluate_clients=true"});
  const json ditto =
      simulate_skewed("ditto", {"--set", "strategy.name=ditto", "--set", "strategy.lambda=0.1"});
  INFO("fedavg " << fedavg.dump(2) << "\nditto " << ditto.dump(2));

  CHECK(prox0["final_accuracy"] == fedavg["final_accuracy"]);
  CHECK(prox0["final_loss"] == fedavg["final_loss"]);
  CHECK(prox0["final_federated_accuracy"] == fedavg["final_federated_accuracy"]);

  // The global half of Ditto trains exactly as FedAvg.
  CHECK(ditto["final_accuracy"] == fedavg["final_accuracy"]);
  CHECK(ditto["final_loss"] == fedavg["final_loss"]);
  // Each client's personal model, on its own test split (a mean over clients
  // with its spread), against the global model on the same splits.
  CHECK(ditto["final_federated_clients_evaluated"] == 3);
  CHECK(ditto.contains("final_federated_accuracy_std"));
  const double personal = ditto["final_federated_accuracy"].get<double>();
  CHECK(personal == Approx(mean_client_accuracy("ditto", 3)));
  CHECK(personal > mean_client_accuracy("fedavg", 3) + 0.05);
}

TEST_CASE("scaffold runs a federation, control variates going both ways",
          "[federation][scaffold]") {
  const json fedavg = simulate_skewed("fedavg-plain", {});
  const json scaffold = simulate_skewed("scaffold", {"--set", "strategy.name=scaffold"});
  INFO(scaffold.dump(2));
  CHECK(scaffold["client_failures"] == 0);
  CHECK(scaffold["final_accuracy"].get<double>() > scaffold["base_accuracy"].get<double>() + 0.1);
  // The control variate has the adapter's size: twice the tensors down and up.
  const double ratio = scaffold["bytes_down"].get<double>() / fedavg["bytes_down"].get<double>();
  CHECK(ratio > 1.9);
  CHECK(ratio < 2.1);
  // c moved away from zero after the first round.
  bool moved = false;
  for (const json& line : read_metrics(out_dir("scaffold"))) {
    if (line["type"] == "round" && line.value("round", 0) == 3) {
      moved = line.value("strategy_control_norm", 0.0) > 0;
    }
  }
  CHECK(moved);
}

TEST_CASE(
    "ditto's personal adapters and scaffold's control variates live in the state store of "
    "on-demand clients, spilled to disk, as they do in resident ones",
    "[federation][ditto][scaffold][state-store]") {
  // state_memory_mb = 0: every client's state goes to disk between rounds.
  const std::vector<std::string> on_demand = {"--set", "client.models=on_demand", "--set",
                                              "client.state_memory_mb=0"};
  const json ditto = simulate_skewed("ditto-resident", {"--set", "strategy.name=ditto"});
  const json ditto_spilled =
      simulate_skewed("ditto-spilled", join({"--set", "strategy.name=ditto"}, on_demand));
  CHECK(ditto_spilled["final_federated_accuracy"] == ditto["final_federated_accuracy"]);
  CHECK(ditto_spilled["final_federated_loss"] == ditto["final_federated_loss"]);

  const json scaffold = simulate_skewed("scaffold-resident", {"--set", "strategy.name=scaffold"});
  const json scaffold_spilled =
      simulate_skewed("scaffold-spilled", join({"--set", "strategy.name=scaffold"}, on_demand));
  CHECK(scaffold_spilled["final_accuracy"] == scaffold["final_accuracy"]);
  CHECK(scaffold_spilled["final_loss"] == scaffold["final_loss"]);
}
