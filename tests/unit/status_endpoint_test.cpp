// The server's status endpoint (docs/outputs.md §Status endpoint): what the
// board shows, served over real HTTP on a free loopback port.
#include <httplib.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lorafed/error.hpp"
#include "src/server/status_server.hpp"

using namespace lorafed;

namespace {

// A board as the orchestrator leaves it after round 3 of 30.
void fill_round_three(StatusBoard& board) {
  board.set_state("running");
  board.set_clients(10, 9);
  board.record_round({{"type", "round"},
                      {"round", 3},
                      {"accuracy", 0.8125},
                      {"loss", 0.5},
                      {"strategy_weight/client-1", 0.25},
                      {"federated_evaluation", {{"accuracy", 0.75}}}},
                     1000, 2000, 1);
}

}  // namespace

TEST_CASE("the status board shows the round, the clients and the latest metrics", "[status]") {
  StatusBoard board("fedhl", "mlp", 30);
  fill_round_three(board);
  const nlohmann::json status = board.json();
  CHECK(status["state"] == "running");
  CHECK(status["round"] == 3);
  CHECK(status["rounds"] == 30);
  CHECK(status["clients_registered"] == 10);
  CHECK(status["clients_alive"] == 9);
  CHECK(status["latest"]["accuracy"] == 0.8125);

  const std::string text = board.prometheus();
  INFO(text);
  CHECK(text.find("# TYPE lorafed_round gauge\nlorafed_round 3\n") != std::string::npos);
  CHECK(text.find("lorafed_clients_alive 9\n") != std::string::npos);
  CHECK(text.find("# TYPE lorafed_bytes_up_total counter\nlorafed_bytes_up_total 2000\n") !=
        std::string::npos);
  CHECK(text.find("lorafed_accuracy 0.8125\n") != std::string::npos);
  CHECK(text.find("lorafed_strategy_weight_client_1 0.25\n") != std::string::npos);
  CHECK(text.find("lorafed_federated_accuracy 0.75\n") != std::string::npos);
  // Every sample line is "name value" with a legal metric name.
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#")) continue;
    INFO(line);
    const auto space = line.find(' ');
    REQUIRE(space != std::string::npos);
    for (const char c : line.substr(0, space)) {
      CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '_'));
    }
  }
}

TEST_CASE("the status endpoint serves JSON and Prometheus text over HTTP", "[status]") {
  StatusBoard board("fedhl", "mlp", 30);
  fill_round_three(board);
  const StatusServer server(board, "127.0.0.1:0");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  const auto status = client.Get("/status");
  REQUIRE(status);
  CHECK(status->status == 200);
  CHECK(status->get_header_value("Content-Type") == "application/json");
  CHECK(nlohmann::json::parse(status->body)["clients_alive"] == 9);
  const auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("lorafed_round 3") != std::string::npos);
  CHECK(client.Get("/nothing-here")->status == 404);
}

TEST_CASE("a status address that cannot be used is a configuration error", "[status]") {
  const StatusBoard board("fedavg", "mlp", 1);
  CHECK_THROWS_AS(StatusServer(board, "no-port"), ConfigError);
  CHECK_THROWS_AS(StatusServer(board, "127.0.0.1:99999"), ConfigError);
  const StatusServer first(board, "127.0.0.1:0");
  CHECK_THROWS_WITH(StatusServer(board, "127.0.0.1:" + std::to_string(first.port())),
                    Catch::Matchers::Contains("cannot listen there"));
}
