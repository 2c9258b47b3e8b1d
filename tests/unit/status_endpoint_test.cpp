// The server's status endpoint (docs/outputs.md §Status endpoint): what the
// board shows, served over real HTTP on a free loopback port.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <vector>

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

// A raw TCP connection to 127.0.0.1:port that has sent `bytes` and then
// goes quiet; closed when destroyed.
class QuietConnection {
 public:
  QuietConnection(int port, const std::string& bytes) : socket_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(socket_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(socket_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
    if (!bytes.empty())
      REQUIRE(::send(socket_, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
  }
  ~QuietConnection() { ::close(socket_); }
  QuietConnection(const QuietConnection&) = delete;
  QuietConnection& operator=(const QuietConnection&) = delete;

  // True once the server has closed its end (within `limit`).
  bool closed_by_server(std::chrono::milliseconds limit) const {
    pollfd entry{socket_, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(limit.count())) <= 0) return false;
    char byte = 0;
    return ::recv(socket_, &byte, 1, MSG_DONTWAIT) <= 0;
  }

 private:
  int socket_;
};

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

TEST_CASE("idle and half-sent requests cannot starve the status endpoint", "[status]") {
  StatusBoard board("fedhl", "mlp", 30);
  fill_round_three(board);
  const StatusServer server(board, "127.0.0.1:0");
  // Three times as many quiet connections as the server has threads: half
  // sent part of a request line, half nothing at all. Each holds a thread
  // until the server gives up on it.
  std::vector<std::unique_ptr<QuietConnection>> quiet;
  for (std::size_t i = 0; i < 3 * StatusServer::kThreads; ++i) {
    quiet.push_back(std::make_unique<QuietConnection>(server.port(), i % 2 == 0 ? "GET /sta" : ""));
  }
  // The honest request waits behind them. Without timeouts (httplib's 5 s,
  // 8 threads on a small machine) it was answered only after ~30 s; the
  // bound here is generous for a slow machine, not a measure of speed.
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(std::chrono::seconds(15));
  client.set_read_timeout(std::chrono::seconds(15));
  const auto started = std::chrono::steady_clock::now();
  const auto status = client.Get("/status");
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  INFO("answered after " << waited.count() << " ms");
  REQUIRE(status);
  CHECK(status->status == 200);
  CHECK(nlohmann::json::parse(status->body)["round"] == 3);
  // The quiet connections were dropped, not left holding threads.
  for (const auto& connection : quiet)
    CHECK(connection->closed_by_server(std::chrono::seconds(15)));
}
