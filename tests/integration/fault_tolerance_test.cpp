// What deployments do to a federation (docs/deployment.md): clients and
// servers killed with SIGKILL, a broker restarted, keys that are not
// allowed, and a peer that sends garbage. Every process runs over tcp
// loopback and every wait is bounded.
// Before Catch: LibTorch defines CHECK too.
#include <ATen/ATen.h>

#include "lorafed/safetensors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <zmq.hpp>

#include <random>
#include <regex>

#include "integration/federation_runs.hpp"
#include "integration/hand_client.hpp"
#include "integration/process.hpp"
#include "src/wire/codec.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;
namespace wire = lorafed::wire;

namespace {

std::unique_ptr<Process> start_client(const fs::path& out, int id,
                                      const std::vector<std::string>& extra,
                                      const std::string& log_suffix = "") {
  auto argv = command("client", out, extra);
  argv.insert(argv.end(), {"--id", std::to_string(id)});
  return std::make_unique<Process>(
      argv, out / ("client-" + std::to_string(id) + log_suffix + ".log"), kEnv);
}

std::vector<std::unique_ptr<Process>> start_clients(const fs::path& out, int count,
                                                    const std::vector<std::string>& extra) {
  std::vector<std::unique_ptr<Process>> clients;
  for (int id = 0; id < count; ++id) clients.push_back(start_client(out, id, extra));
  return clients;
}

// The strategy state (FedAvg: the global adapter) after the last round.
lorafed::NamedTensors final_state(const fs::path& out) {
  const json index = json::parse(read_file(out / "checkpoint" / "checkpoint.json"));
  return lorafed::load_safetensors(out / "checkpoint" / index["state"].get<std::string>()).tensors;
}

double max_difference(const lorafed::NamedTensors& a, const lorafed::NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  double largest = 0;
  for (const auto& [name, tensor] : a) {
    REQUIRE(b.contains(name));
    REQUIRE(tensor.sizes() == b.at(name).sizes());
    largest = std::max(largest, (tensor - b.at(name)).abs().max().item<double>());
  }
  return largest;
}

}  // namespace

TEST_CASE("a client killed mid-round is failed within the heartbeat timeout and rejoins",
          "[fault]") {
  const fs::path out = fresh_dir("fault-client");
  // Slow rounds (10 local epochs) so that the kill lands while clients train;
  // a long deadline, so it is the heartbeat that notices.
  const auto extra = join(liveness("tcp://127.0.0.1:47511"),
                          {"--set", "federation.rounds=30", "--set", "train.local_epochs=10",
                           "--set", "federation.round_timeout_s=120"});
  Process server(command("server", out, extra), out / "server.log", kEnv);
  auto clients = start_clients(out, 3, extra);
  REQUIRE(wait_until([&] { return checkpointed_round(out) >= 1; }, std::chrono::seconds(120)));
  clients[2]->kill_hard();

  int lost_round = 0;
  REQUIRE(wait_until(
      [&] {
        return has_metrics_line(out, [&](const json& line) {
          const bool lost = line["type"] == "client" && line["client"] == "client-2" &&
                            line["status"] == "failed";
          if (lost) lost_round = line["round"].get<int>();
          return lost;
        });
      },
      std::chrono::seconds(60)));
  clients[2] = start_client(out, 2, extra, "-restarted");

  require_exit(server, 0, out / "server.log", 240);
  for (auto& client : clients) CHECK(client->wait(std::chrono::seconds(30)) == 0);
  std::string reason;
  int rejoined_round = 0, rounds = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round" && line["round"].get<int>() > 0) ++rounds;
    if (line["type"] != "client" || line["client"] != "client-2") continue;
    if (line["status"] == "failed" && line["round"] == lost_round) reason = line["reason"];
    if (line["status"] == "ok" && line["phase"] == "fit" && line["round"].get<int>() > lost_round &&
        rejoined_round == 0) {
      rejoined_round = line["round"].get<int>();
    }
  }
  CHECK(rounds == 30);
  CHECK_THAT(reason, Catch::Matchers::Contains("lost: no heartbeat"));
  INFO("lost in round " << lost_round);
  CHECK(rejoined_round > lost_round);
}

TEST_CASE("a server killed after round k and resumed ends with the uninterrupted run's adapter",
          "[fault]") {
  const auto extra = join(liveness("tcp://127.0.0.1:47512"),
                          {"--set", "federation.rounds=6", "--set", "train.local_epochs=10"});
  const fs::path reference = fresh_dir("fault-resume-reference");
  {
    Process server(command("server", reference, extra), reference / "server.log", kEnv);
    auto clients = start_clients(reference, 3, extra);
    require_exit(server, 0, reference / "server.log");
  }

  const fs::path out = fresh_dir("fault-resume");
  auto server = std::make_unique<Process>(command("server", out, extra), out / "server.log", kEnv);
  auto clients = start_clients(out, 3, extra);
  REQUIRE(wait_until([&] { return checkpointed_round(out) >= 2; }, std::chrono::seconds(120)));
  server->kill_hard();
  const int k = checkpointed_round(out);
  INFO("killed after round " << k);
  REQUIRE(k < 6);

  auto resume = command("server", out, extra);
  resume.insert(resume.end(), {"--resume", out.string()});
  Process resumed(resume, out / "server-resumed.log", kEnv);
  require_exit(resumed, 0, out / "server-resumed.log");
  for (auto& client : clients) CHECK(client->wait(std::chrono::seconds(30)) == 0);

  CHECK(max_difference(final_state(out), final_state(reference)) <= 1e-6);
  const json summary = read_summary(out);
  const json expected = read_summary(reference);
  CHECK(summary["final_loss"].get<double>() ==
        Approx(expected["final_loss"].get<double>()).margin(1e-6));
  CHECK(summary["final_accuracy"] == expected["final_accuracy"]);
  // metrics.jsonl reads as one run: the base and each round once.
  std::vector<int> rounds;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round") rounds.push_back(line["round"].get<int>());
  }
  CHECK(rounds == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("a broker restarted mid-federation: every client reconnects and the federation ends",
          "[fault]") {
  const fs::path out = fresh_dir("fault-broker");
  const auto extra =
      join(liveness("tcp://127.0.0.1:47513"),
           {"--set", "federation.rounds=12", "--set", "train.local_epochs=10", "--set",
            "federation.round_timeout_s=20", "--set", "broker.embedded=false", "--set",
            "broker.server_endpoint=\"tcp://127.0.0.1:47514\""});
  auto broker = std::make_unique<Process>(command("broker", out, extra), out / "broker.log", kEnv);
  Process server(command("server", out, extra), out / "server.log", kEnv);
  auto clients = start_clients(out, 3, extra);
  REQUIRE(wait_until([&] { return checkpointed_round(out) >= 2; }, std::chrono::seconds(120)));
  broker->kill_hard();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  broker =
      std::make_unique<Process>(command("broker", out, extra), out / "broker-restarted.log", kEnv);

  require_exit(server, 0, out / "server.log", 240);
  for (auto& client : clients) CHECK(client->wait(std::chrono::seconds(30)) == 0);
  const json summary = read_summary(out);
  CHECK(summary["rounds"] == 12);
  // No round is lost: the server sends the instructions that died with the
  // broker again when their clients register with the new one.
  int rounds = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] != "round" || line["round"] == 0) continue;
    ++rounds;
    INFO("round " << line["round"]);
    CHECK(line["clients_ok"] == 3);
  }
  CHECK(rounds == 12);
  CHECK_THAT(read_file(out / "client-0.log"), Catch::Matchers::Contains("reconnecting"));
  broker->kill_hard();
}

TEST_CASE("a client whose CURVE key is not allowed cannot register or receive an adapter",
          "[fault][security]") {
  const fs::path out = fresh_dir("fault-curve");
  for (const std::string name : {"broker", "client-0", "stranger"}) {
    Process keygen({LORAFED_EXECUTABLE, "keygen", (out / "keys" / name).string()},
                   out / ("keygen-" + name + ".log"));
    require_exit(keygen, 0, out / ("keygen-" + name + ".log"), 30);
  }
  fs::create_directories(out / "allowed");
  fs::copy_file(out / "keys" / "client-0.pub", out / "allowed" / "client-0.pub");
  CHECK((fs::status(out / "keys" / "broker.key").permissions() & fs::perms::others_read) ==
        fs::perms::none);

  const auto base =
      join(liveness("tcp://127.0.0.1:47515"),
           {"--set", "federation.rounds=2", "--set", "federation.min_available_clients=1", "--set",
            "transport.curve_server_key=\"" + (out / "keys/broker.pub").string() + "\""});
  auto with_key = [&](const std::string& name) {
    return join(base, {"--set", "transport.curve_secret_key=\"" +
                                    (out / "keys" / (name + ".key")).string() + "\""});
  };
  const auto server_extra =
      join(with_key("broker"),
           {"--set", "transport.curve_allowed_keys=\"" + (out / "allowed").string() + "\""});
  Process server(command("server", out, server_extra), out / "server.log", kEnv);
  // The stranger claims to be client 1; it gives up when nothing answers.
  auto stranger = start_client(
      out, 1, join(with_key("stranger"), {"--set", "client.server_silence_timeout_s=4"}));
  // The allowed client starts once the stranger has been refused: with both
  // started together, the two rounds can end before the stranger connects.
  REQUIRE(wait_until(
      [&] {
        return read_file(out / "server.log").find("refused a connection") != std::string::npos;
      },
      std::chrono::seconds(60)));
  auto allowed = start_client(out, 0, with_key("client-0"));

  require_exit(server, 0, out / "server.log");
  CHECK(allowed->wait(std::chrono::seconds(30)) == 0);
  CHECK(stranger->wait(std::chrono::seconds(60)) == 3);
  const std::string server_log = read_file(out / "server.log");
  const std::string key_file = read_file(out / "keys" / "stranger.pub");
  std::smatch match;
  REQUIRE(std::regex_search(key_file, match, std::regex("public = \"(.{40})\"")));
  CHECK_THAT(server_log, Catch::Matchers::Contains("refused a connection") &&
                             Catch::Matchers::Contains(match[1].str()));
  const json summary = read_summary(out);
  CHECK(summary["clients_registered"] == 1);
  for (const json& line : read_metrics(out)) CHECK(line.value("client", "") != "client-1");
  CHECK_THAT(read_file(out / "client-1.log"), !Catch::Matchers::Contains("round 1"));
  // The refused client is told where to look long before it gives up.
  CHECK_THAT(read_file(out / "client-1.log"),
             Catch::Matchers::Contains("is this client's key on its allowlist"));
}

namespace {

int error_code(const std::optional<wire::Envelope>& envelope) {
  REQUIRE(envelope);
  INFO("received " << wire::body_name(envelope->body) << " for " << envelope->recipient
                   << " of round " << envelope->round);
  const auto* error = std::get_if<wire::ErrorBody>(&envelope->body);
  REQUIRE(error != nullptr);
  return static_cast<int>(error->code);
}

constexpr int kMalformed = static_cast<int>(wire::ErrorCode::kMalformed);
constexpr int kInvalidTensor = static_cast<int>(wire::ErrorCode::kInvalidTensor);

// Runs a federation of clients 0 and 1 plus a hand-written client 2 that
// answers every instruction with `answer`; returns the output folder.
fs::path run_with_hand_client(
    const std::string& name,
    const std::function<void(HandClient&, const wire::Envelope& instruction)>& answer,
    const std::function<void(const std::string& endpoint)>& before_registering = {},
    const std::vector<std::string>& more_settings = {}) {
  const fs::path out = fresh_dir(name);
  const std::string endpoint = "tcp://127.0.0.1:47516";
  const auto extra = join(join(liveness(endpoint), {"--set", "federation.rounds=3", "--set",
                                                    "transport.max_part_bytes=1048576"}),
                          more_settings);
  Process server(command("server", out, extra), out / "server.log", kEnv);
  auto clients = start_clients(out, 2, extra);
  if (before_registering) before_registering(endpoint);
  HandClient hand(endpoint, "hand", "client-2");
  // The server names its model id when it refuses a wrong one.
  hand.send(wire::Envelope{0, "client-2", wire::kServerId, wire::RegisterBody{4, "?", 100}, {}});
  const auto refusal = hand.next(std::chrono::seconds(60));
  REQUIRE(error_code(refusal) == static_cast<int>(wire::ErrorCode::kRefused));
  std::smatch match;
  const std::string text = std::get<wire::ErrorBody>(refusal->body).text;
  REQUIRE(std::regex_search(text, match, std::regex("server's model '([^']+)'")));
  hand.send(wire::Envelope{
      0, "client-2", wire::kServerId, wire::RegisterBody{4, match[1].str(), 100}, {}});
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < std::chrono::seconds(120)) {
    auto envelope = hand.next(std::chrono::milliseconds(300));
    if (!envelope) continue;
    if (std::holds_alternative<wire::ShutdownBody>(envelope->body)) break;
    if (std::holds_alternative<wire::FitInsBody>(envelope->body) ||
        std::holds_alternative<wire::EvaluateInsBody>(envelope->body)) {
      answer(hand, *envelope);
    }
  }
  require_exit(server, 0, out / "server.log");
  for (auto& client : clients) CHECK(client->wait(std::chrono::seconds(30)) == 0);
  return out;
}

wire::Envelope reply_to(const wire::Envelope& instruction, wire::Body body,
                        lorafed::NamedTensors tensors = {}) {
  return wire::Envelope{instruction.round, "client-2", wire::kServerId, std::move(body),
                        std::move(tensors)};
}

// Client 2 of the reference runs: fails every instruction at once.
void always_fail(HandClient& hand, const wire::Envelope& instruction) {
  hand.send(reply_to(instruction, wire::ErrorBody{wire::ErrorCode::kClientFailure, "no"}));
}

}  // namespace

TEST_CASE(
    "garbage, oversized frames, wrong shapes and NaN leave the server running and the "
    "global state as if the sender had failed",
    "[fault][security]") {
  const fs::path reference = run_with_hand_client("fault-garbage-reference", always_fail);

  std::vector<int> replies;
  auto hostile_before = [&](const std::string& endpoint) {
    HandClient hand(endpoint, "stranger");
    std::mt19937 random(7);
    std::string noise(300, '\0');
    for (char& byte : noise) byte = static_cast<char>(random());
    hand.send_frames({noise});
    replies.push_back(error_code(hand.next(std::chrono::seconds(30))));
    std::string register_frame;
    for (const auto& frame :
         wire::encode(wire::Envelope{0, "client-2", wire::kServerId, wire::RegisterBody{}, {}})
             .frames) {
      register_frame.assign(reinterpret_cast<const char*>(frame.data), frame.size / 2);
      break;
    }
    hand.send_frames({register_frame});  // truncated
    replies.push_back(error_code(hand.next(std::chrono::seconds(30))));
    // Over transport.max_part_bytes: ZeroMQ drops the connection; nothing
    // reaches the broker.
    HandClient oversized(endpoint, "oversized");
    oversized.send_frames({register_frame, std::string(2 << 20, 'x')});
    CHECK_FALSE(oversized.next(std::chrono::seconds(2)));
  };
  int fit = 0;
  const fs::path out = run_with_hand_client(
      "fault-garbage",
      [&](HandClient& hand, const wire::Envelope& instruction) {
        if (!std::holds_alternative<wire::FitInsBody>(instruction.body)) {
          hand.send(reply_to(instruction, wire::ErrorBody{wire::ErrorCode::kClientFailure, "no"}));
          return;
        }
        lorafed::NamedTensors tensors;
        for (const auto& [name, tensor] : instruction.tensors) tensors[name] = tensor.clone();
        const std::string a = tensors.begin()->first;
        switch (++fit) {
          case 1:  // wrong shape
            tensors[a] = tensors[a].t().contiguous();
            break;
          case 2:  // NaN
            tensors[a].view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
            break;
          default:  // a layer missing
            tensors.erase(a);
        }
        const double alpha = std::get<wire::FitInsBody>(instruction.body).alpha;
        hand.send(reply_to(instruction, wire::FitResBody{alpha, 100, {}}, std::move(tensors)));
        replies.push_back(error_code(hand.next(std::chrono::seconds(30))));
      },
      hostile_before);

  CHECK(replies ==
        std::vector<int>{kMalformed, kMalformed, kInvalidTensor, kInvalidTensor, kInvalidTensor});
  CHECK(max_difference(final_state(out), final_state(reference)) == 0);
  int invalid = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "client" && line["client"] == "client-2" && line["phase"] == "fit") {
      CHECK(line["status"] == "failed");
      invalid += line["reason"].get<std::string>().starts_with("invalid update") ? 1 : 0;
    }
  }
  CHECK(invalid == 3);
}

TEST_CASE("a result that comes after its round closed is discarded, never aggregated later",
          "[fault]") {
  const std::vector<std::string> short_rounds = {"--set", "federation.round_timeout_s=3"};
  const fs::path reference =
      run_with_hand_client("fault-late-reference", always_fail, {}, short_rounds);

  // Client 2 answers each fit instruction only when the next instruction
  // comes, after the round closed without it, with an update that would
  // move the global adapter if it were averaged in.
  std::optional<wire::Envelope> unanswered;
  int late = 0;
  const fs::path out = run_with_hand_client(
      "fault-late",
      [&](HandClient& hand, const wire::Envelope& instruction) {
        if (unanswered) {
          const auto& fit = std::get<wire::FitInsBody>(unanswered->body);
          lorafed::NamedTensors tensors;
          for (const auto& [name, tensor] : unanswered->tensors) tensors[name] = tensor + 1.0f;
          hand.send(
              reply_to(*unanswered, wire::FitResBody{fit.alpha, 100, {}}, std::move(tensors)));
          unanswered.reset();
          ++late;
        }
        if (std::holds_alternative<wire::FitInsBody>(instruction.body)) {
          unanswered = instruction;
        } else {
          always_fail(hand, instruction);
        }
      },
      {}, short_rounds);

  CHECK(late >= 2);
  CHECK(max_difference(final_state(out), final_state(reference)) == 0);
  CHECK_THAT(read_file(out / "server.log"),
             Catch::Matchers::Contains("discarding FitRes from client-2 for round 1"));
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "client" && line["client"] == "client-2" && line["phase"] == "fit") {
      CHECK_THAT(line["reason"].get<std::string>(), Catch::Matchers::Contains("round_timeout_s"));
    }
  }
}

TEST_CASE("rounds without enough results leave the global model unchanged and the run goes on",
          "[fault]") {
  const fs::path out = fresh_dir("fault-no-results");
  // No client can answer within a millisecond: every round has 0 results,
  // fewer than min_fit_results = 1.
  Process simulate(command("simulate", out,
                           {"--set", "federation.round_timeout_s=0.001", "--set",
                            "transport.endpoint=\"tcp://127.0.0.1:47517\""}),
                   out / "simulate.log", kEnv);
  require_exit(simulate, 0, out / "simulate.log");
  int rounds = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] != "round" || line["round"] == 0) continue;
    ++rounds;
    CHECK(line["clients_ok"] == 0);
    CHECK(line["aggregated"] == false);
  }
  CHECK(rounds == 3);
  const json summary = read_summary(out);
  CHECK(summary["final_accuracy"] == summary["base_accuracy"]);
  CHECK(summary["final_loss"] == summary["base_loss"]);
  CHECK_THAT(read_file(out / "simulate.log"),
             Catch::Matchers::Contains("fewer than min_fit_results = 1"));
}
