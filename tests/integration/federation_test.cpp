// Whole federations: `lorafed server` and `lorafed client` processes over tcp
// loopback, and `lorafed simulate` in one process.
#include <httplib.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>
#include <thread>

#include "integration/federation_runs.hpp"
#include "integration/process.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Runs one server and `clients` client processes; returns the server's exit code.
int run_processes(const fs::path& out, int clients, const std::vector<std::string>& extra = {}) {
  Process server(command("server", out, extra), out / "server.log", kEnv);
  std::vector<std::unique_ptr<Process>> client_processes;
  for (int k = 0; k < clients; ++k) {
    auto argv = command("client", out, extra);
    argv.insert(argv.end(), {"--id", std::to_string(k)});
    client_processes.push_back(
        std::make_unique<Process>(argv, out / ("client-" + std::to_string(k) + ".log"), kEnv));
  }
  const auto code = server.wait(std::chrono::seconds(300));
  INFO(lorafed::test::read_file(out / "server.log"));
  REQUIRE(code.has_value());
  for (auto& client : client_processes) CHECK(client->wait(std::chrono::seconds(30)) == 0);
  return *code;
}

}  // namespace

TEST_CASE(
    "server and 3 client processes over tcp beat the base model, and an inproc simulation and one "
    "process serving the 3 clients match them",
    "[federation]") {
  const fs::path tcp_out = fresh_dir("tcp");
  REQUIRE(run_processes(tcp_out, 3) == 0);
  const json tcp = read_summary(tcp_out);
  INFO(tcp.dump(2));
  CHECK(tcp["rounds"] == 3);
  CHECK(tcp["clients_registered"] == 3);
  CHECK(tcp["client_failures"] == 0);
  // Fine-tuning on all ten classes must clearly beat a base pretrained on five.
  CHECK(tcp["final_accuracy"].get<double>() > tcp["base_accuracy"].get<double>() + 0.10);

  const auto metrics = read_metrics(tcp_out);
  int rounds = 0, client_results = 0;
  for (const json& line : metrics) {
    if (line["type"] == "round") ++rounds;
    if (line["type"] == "client" && line["status"] == "ok") {
      ++client_results;
      CHECK(line["bytes_up"].get<std::int64_t>() > 0);
      CHECK(line["bytes_down"].get<std::int64_t>() > 0);
    }
  }
  CHECK(rounds == 1 + 3);  // the base, then every round
  CHECK(client_results == 3 * 3);

  // The same federation in one process over inproc, same seed: same numbers.
  const fs::path sim_out = fresh_dir("inproc");
  Process simulate(command("simulate", sim_out, {"--set", "transport.name=inproc"}),
                   sim_out / "simulate.log", kEnv);
  REQUIRE(simulate.wait(std::chrono::seconds(300)) == 0);
  const json sim = read_summary(sim_out);
  INFO(sim.dump(2));
  CHECK(sim["transport"] == "inproc");
  CHECK(sim["final_accuracy"].get<double>() == tcp["final_accuracy"].get<double>());
  CHECK(sim["final_loss"].get<double>() == Approx(tcp["final_loss"].get<double>()).epsilon(1e-9));
  CHECK(sim["base_accuracy"].get<double>() == tcp["base_accuracy"].get<double>());
  // Each instruction goes out once: no client looks registered twice (the
  // broker used to forward registrations, then replay them all when the
  // server first spoke, and round 1 resent every instruction).
  CHECK_THAT(lorafed::test::read_file(sim_out / "simulate.log"),
             !Catch::Matchers::Contains("registered again"));

  // One client process serving all three (`--clients 0-2`): the same numbers.
  const fs::path hosted_out = fresh_dir("hosted");
  Process hosted_server(command("server", hosted_out), hosted_out / "server.log", kEnv);
  Process host(join(command("client", hosted_out), {"--clients", "0-2", "--threads", "2"}),
               hosted_out / "clients.log", kEnv);
  REQUIRE(hosted_server.wait(std::chrono::seconds(300)) == 0);
  CHECK(host.wait(std::chrono::seconds(30)) == 0);
  const json hosted = read_summary(hosted_out);
  INFO(hosted.dump(2));
  CHECK(hosted["clients_registered"] == 3);
  CHECK(hosted["client_failures"] == 0);
  CHECK(hosted["final_accuracy"].get<double>() == tcp["final_accuracy"].get<double>());
  CHECK(hosted["final_loss"].get<double>() ==
        Approx(tcp["final_loss"].get<double>()).epsilon(1e-9));
  CHECK_THAT(lorafed::test::read_file(hosted_out / "clients.log"),
             Catch::Matchers::Contains("3 clients (clients-0-2) on 2 threads"));
  for (const fs::path& log : {tcp_out / "server.log", sim_out / "simulate.log"}) {
    INFO(log);
    CHECK_THAT(lorafed::test::read_file(log), !Catch::Matchers::Contains("again; sending its"));
  }
}

TEST_CASE("the server's status endpoint follows the federation", "[federation][status]") {
  const fs::path out = fresh_dir("status");
  const int port = 47631;
  const std::vector<std::string> extra = {
      "--set", "transport.endpoint=\"tcp://127.0.0.1:47503\"", "--set",
      "status.listen=\"127.0.0.1:" + std::to_string(port) + "\""};
  Process server(command("server", out, extra), out / "server.log", kEnv);
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(1);

  // Before any client: waiting, nobody registered.
  json status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (const auto response = http.Get("/status")) {
      status = json::parse(response->body);
      if (status["state"] == "waiting for clients") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(lorafed::test::read_file(out / "server.log"));
  REQUIRE(status["state"] == "waiting for clients");
  CHECK(status["clients_registered"] == 0);
  CHECK(status["rounds"] == 3);
  const auto metrics = http.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("lorafed_clients_registered 0\n") != std::string::npos);

  // The clients arrive: the endpoint counts them while the rounds run.
  std::vector<std::unique_ptr<Process>> clients;
  for (int k = 0; k < 3; ++k) {
    auto argv = command("client", out, extra);
    argv.insert(argv.end(), {"--id", std::to_string(k)});
    clients.push_back(
        std::make_unique<Process>(argv, out / ("client-" + std::to_string(k) + ".log"), kEnv));
  }
  int seen_registered = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto response = http.Get("/status");
    if (!response) break;  // the server finished and took the endpoint with it
    seen_registered = json::parse(response->body)["clients_registered"].get<int>();
    if (seen_registered == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(seen_registered == 3);
  REQUIRE(server.wait(std::chrono::seconds(300)) == 0);
}
