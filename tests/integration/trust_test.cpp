// Trust boundaries (docs/deployment.md, "Threat model"), tried as an
// attacker and an operator would, over tcp loopback: a client key acting as
// the server, a client evicting or impersonating another, registrations a
// strategy cannot take or that would not fit in memory, a flood of
// registrations, and every process stopped by SIGINT or SIGTERM. Each test
// asserts what the honest participants see.
// Before Catch: LibTorch defines CHECK too.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <limits>
#include <regex>

#include <nlohmann/json.hpp>

#include "integration/federation_runs.hpp"
#include "integration/hand_client.hpp"
#include "integration/process.hpp"

using namespace lorafed::test;
using nlohmann::json;
namespace fs = std::filesystem;
namespace wire = lorafed::wire;

namespace {

void keygen(const fs::path& stem) {
  const fs::path log = stem.parent_path() / ("keygen-" + stem.filename().string() + ".log");
  Process process({LORAFED_EXECUTABLE, "keygen", stem.string()}, log);
  require_exit(process, 0, log, 30);
}

// The Z85 key named `field` ("public", "secret") in a key file.
std::string key_of(const fs::path& file, const std::string& field) {
  const std::string text = read_file(file);
  std::smatch match;
  REQUIRE(std::regex_search(text, match, std::regex(field + " = \"(.{40})\"")));
  return match[1].str();
}

HandKeys hand_keys(const fs::path& keys, const std::string& name) {
  return HandKeys{key_of(keys / (name + ".key"), "public"),
                  key_of(keys / (name + ".key"), "secret"), key_of(keys / "broker.pub", "public")};
}

// The fit results of each client over the run, by client id.
std::map<std::string, int> fit_results(const fs::path& out) {
  std::map<std::string, int> ok;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "client" && line["phase"] == "fit" && line["status"] == "ok") {
      ++ok[line["client"].get<std::string>()];
    }
  }
  return ok;
}

int rounds_run(const fs::path& out) {
  int rounds = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round" && line["round"].get<int>() > 0) ++rounds;
  }
  return rounds;
}

std::int64_t resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

std::string register_frame(const std::string& id, std::int64_t rank, const std::string& model) {
  const auto message = wire::encode(
      wire::Envelope{0, id, wire::kServerId, wire::RegisterBody{rank, model, 100}, {}});
  return std::string(reinterpret_cast<const char*>(message.frames[0].data), message.frames[0].size);
}

// Registers `id` at `rank` by hand: the first attempt, with a wrong model id,
// is refused with the server's model id, which the second one uses.
void register_by_hand(HandClient& hand, const std::string& id, std::int64_t rank) {
  std::string model_id = "?";
  for (int attempt = 0; attempt < 2; ++attempt) {
    hand.send_frames({register_frame(id, rank, model_id)});
    if (attempt == 1) break;
    while (auto reply = hand.next(std::chrono::seconds(60))) {
      std::smatch match;
      if (const auto* error = std::get_if<wire::ErrorBody>(&reply->body);
          error != nullptr &&
          std::regex_search(error->text, match, std::regex("server's model '([^']+)'"))) {
        model_id = match[1].str();
        break;
      }
    }
  }
}

}  // namespace

TEST_CASE("a client key can neither act as the server nor evict or impersonate another client",
          "[trust][security]") {
  const fs::path out = fresh_dir("trust-identity");
  const fs::path keys = out / "keys";
  fs::create_directories(keys / "allowed");
  for (const std::string name : {"broker", "server", "client-0", "client-1", "mallory"}) {
    keygen(keys / name);
    if (name.starts_with("client") || name == "mallory") {
      fs::copy_file(keys / (name + ".pub"), keys / "allowed" / (name + ".pub"));
    }
  }
  const std::string clients_endpoint = "tcp://127.0.0.1:47611";
  const std::string server_endpoint = "tcp://127.0.0.1:47612";
  const auto common =
      join(liveness(clients_endpoint),
           {"--set", "federation.rounds=4", "--set", "train.local_epochs=3", "--set",
            "federation.min_available_clients=3", "--set", "broker.embedded=false", "--set",
            "broker.server_endpoint=\"" + server_endpoint + "\"", "--set",
            "transport.curve_server_key=\"" + (keys / "broker.pub").string() + "\""});
  auto with_key = [&](const std::string& name) {
    return join(common, {"--set", "transport.curve_secret_key=\"" +
                                      (keys / (name + ".key")).string() + "\""});
  };
  Process broker(
      command(
          "broker", out,
          join(with_key("broker"),
               {"--set", "transport.curve_allowed_keys=\"" + (keys / "allowed").string() + "\"",
                "--set",
                "transport.curve_allowed_server_key=\"" + (keys / "server.pub").string() + "\""})),
      out / "broker.log", kEnv);

  // Mallory holds a client key and connects to the server's endpoint first,
  // as the server: the broker lets her in nowhere but the clients' side.
  HandClient as_server(server_endpoint, "server", "", hand_keys(keys, "mallory"));
  as_server.send(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}});

  Process server(command("server", out, with_key("server")), out / "server.log", kEnv);
  Process client0(join(command("client", out, with_key("client-0")), {"--id", "0"}),
                  out / "client-0.log", kEnv);
  Process client1(join(command("client", out, with_key("client-1")), {"--id", "1"}),
                  out / "client-1.log", kEnv);

  // Mallory takes part honestly as client-2, and on the side claims that
  // client-1 is lost, in client-1's name and in her own, and sends results
  // in client-1's name.
  HandClient mallory(clients_endpoint, "mallory", "client-2", hand_keys(keys, "mallory"));
  std::string model_id;
  mallory.send(wire::Envelope{0, "client-2", wire::kServerId, wire::RegisterBody{4, "?", 100}, {}});
  {
    const auto refusal = mallory.next(std::chrono::seconds(60));
    REQUIRE(refusal);
    std::smatch match;
    const std::string text = std::get<wire::ErrorBody>(refusal->body).text;
    REQUIRE(std::regex_search(text, match, std::regex("server's model '([^']+)'")));
    model_id = match[1].str();
  }
  mallory.send(
      wire::Envelope{0, "client-2", wire::kServerId, wire::RegisterBody{4, model_id, 100}, {}});
  int attacks = 0;
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < std::chrono::seconds(120)) {
    auto envelope = mallory.next(std::chrono::milliseconds(300));
    if (!envelope) continue;
    if (std::holds_alternative<wire::ShutdownBody>(envelope->body)) break;
    if (!std::holds_alternative<wire::FitInsBody>(envelope->body)) continue;
    const auto disconnected = wire::ErrorBody{wire::ErrorCode::kDisconnected, "gone"};
    mallory.send(wire::Envelope{0, "client-1", wire::kServerId, disconnected, {}});
    mallory.send(wire::Envelope{0, "client-2", wire::kServerId, disconnected, {}});
    lorafed::NamedTensors poisoned;
    for (const auto& [name, tensor] : envelope->tensors) poisoned[name] = tensor * 100.0f;
    const double alpha = std::get<wire::FitInsBody>(envelope->body).alpha;
    mallory.send(wire::Envelope{envelope->round, "client-1", wire::kServerId,
                                wire::FitResBody{alpha, 100, {}}, poisoned});
    // Her own answer: a text that is not UTF-8 (nlohmann::json cannot
    // write it: recorded as a failure reason it stopped the server), or a
    // valid update whose metrics are named as the record's own fields.
    if (attacks % 2 == 0) {
      // Refused as malformed, so she answers again in plain text: the round
      // need not wait for its deadline.
      for (const char* text : {"no \xff\xfe", "no"}) {
        mallory.send(wire::Envelope{envelope->round,
                                    "client-2",
                                    wire::kServerId,
                                    wire::ErrorBody{wire::ErrorCode::kClientFailure, text},
                                    {}});
      }
    } else {
      mallory.send(wire::Envelope{
          envelope->round, "client-2", wire::kServerId,
          wire::FitResBody{alpha,
                           100,
                           {{"client", 7},
                            {"status", 3},
                            {"bytes_up", 1e18},
                            {"train_loss", std::numeric_limits<double>::quiet_NaN()}}},
          envelope->tensors});
    }
    ++attacks;
  }

  require_exit(server, 0, out / "server.log");
  require_exit(client0, 0, out / "client-0.log", 30);
  require_exit(client1, 0, out / "client-1.log", 30);
  broker.kill_hard();
  CHECK(attacks >= 2);
  // Her own records say who she is and what she really sent.
  int own_results = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round" && line.contains("train_loss")) {
      CHECK(line["train_loss"].is_number());
    }
    if (line["type"] != "client" || line["phase"] != "fit") continue;
    CHECK(line["client"].is_string());
    if (line["client"] == "client-2" && line["status"] == "ok") {
      ++own_results;
      CHECK(line["bytes_up"].get<double>() < 1e9);
      CHECK_FALSE(line.contains("train_loss"));
    }
  }
  CHECK(own_results >= 1);
  // The honest clients' results made every round; client-1 was never lost.
  const auto results = fit_results(out);
  CHECK(rounds_run(out) == 4);
  CHECK(results.at("client-0") == 4);
  CHECK(results.at("client-1") == 4);
  const std::string server_log = read_file(out / "server.log");
  CHECK_THAT(server_log, !Catch::Matchers::Contains("client-1 is lost"));
  const std::string broker_log = read_file(out / "broker.log");
  CHECK_THAT(broker_log, Catch::Matchers::Contains("refused a connection") &&
                             Catch::Matchers::Contains("to the server endpoint") &&
                             Catch::Matchers::Contains(key_of(keys / "mallory.pub", "public")));
  CHECK_THAT(broker_log, Catch::Matchers::Contains("dropping Error(Disconnected) from client-1"));
  CHECK_THAT(broker_log, Catch::Matchers::Contains("claims to be client-1 from key 'mallory'") &&
                             Catch::Matchers::Contains("client-1 registered with key 'client-1'"));
}

TEST_CASE("a FedAvg client of another rank is refused at registration and the federation goes on",
          "[trust]") {
  const fs::path out = fresh_dir("trust-wrong-rank");
  const auto extra =
      join(liveness("tcp://127.0.0.1:47613"), {"--set", "federation.min_available_clients=2"});
  Process server(command("server", out, extra), out / "server.log", kEnv);
  Process client0(join(command("client", out, extra), {"--id", "0"}), out / "client-0.log", kEnv);
  Process client1(join(command("client", out, extra), {"--id", "1"}), out / "client-1.log", kEnv);
  Process odd(join(command("client", out, join(extra, {"--set", "lora.rank=8"})), {"--id", "2"}),
              out / "client-2.log", kEnv);
  require_exit(odd, 3, out / "client-2.log");
  require_exit(server, 0, out / "server.log");
  require_exit(client0, 0, out / "client-0.log", 30);
  require_exit(client1, 0, out / "client-1.log", 30);
  CHECK_THAT(read_file(out / "client-2.log"),
             Catch::Matchers::Contains("rank 8, but the server's configuration gives client-2 "
                                       "rank 4"));
  const auto results = fit_results(out);
  CHECK(results.at("client-0") == 3);
  CHECK(results.at("client-1") == 3);
  CHECK_FALSE(results.contains("client-2"));
}

TEST_CASE("a strategy that instructs one client twice stops the run with an error naming both",
          "[trust]") {
  const fs::path out = fresh_dir("trust-duplicate-instruction");
  std::map<std::string, std::string> env = kEnv;
  env["LORAFED_PLUGIN_PATH"] = LORAFED_MISBEHAVING_PLUGIN_DIR;
  Process run(command("simulate", out, {"--set", "strategy.name=duplicate"}), out / "run.log", env);
  require_exit(run, 1, out / "run.log");
  CHECK_THAT(read_file(out / "run.log"),
             Catch::Matchers::Contains("strategy 'duplicate' instructed client 'client-") &&
                 Catch::Matchers::Contains("' twice in round 1"));
}

TEST_CASE("a SCAFFOLD client that keeps its control variate back fails alone",
          "[trust][scaffold]") {
  const fs::path out = fresh_dir("trust-scaffold");
  const std::string endpoint = "tcp://127.0.0.1:47619";
  const auto extra = join(liveness(endpoint), {"--set", "strategy.name=\"scaffold\""});
  Process server(command("server", out, extra), out / "server.log", kEnv);
  Process client0(join(command("client", out, extra), {"--id", "0"}), out / "client-0.log", kEnv);
  Process client1(join(command("client", out, extra), {"--id", "1"}), out / "client-1.log", kEnv);
  // Client 2 learns the model id from a refusal, registers, and answers every
  // instruction with the adapter it was sent and no control variate.
  HandClient hand(endpoint, "hand", "client-2");
  register_by_hand(hand, "client-2", 4);
  int answered = 0;
  while (auto instruction = hand.next(std::chrono::seconds(60))) {
    if (std::holds_alternative<wire::ShutdownBody>(instruction->body)) break;
    const auto* fit = std::get_if<wire::FitInsBody>(&instruction->body);
    if (fit == nullptr) continue;
    CHECK(wire::take_prefixed(instruction->tensors, wire::kControlPrefix).size() == 6);
    hand.send(wire::Envelope{instruction->round, "client-2", wire::kServerId,
                             wire::FitResBody{fit->alpha, 50, {}}, instruction->tensors});
    ++answered;
  }
  require_exit(server, 0, out / "server.log");
  require_exit(client0, 0, out / "client-0.log", 30);
  require_exit(client1, 0, out / "client-1.log", 30);
  CHECK(answered == 3);
  CHECK(rounds_run(out) == 3);
  const auto results = fit_results(out);
  CHECK(results.at("client-0") == 3);
  CHECK(results.at("client-1") == 3);
  CHECK_FALSE(results.contains("client-2"));
  CHECK_THAT(read_file(out / "server.log"),
             Catch::Matchers::Contains("client-2 failed: invalid update: no control variate "
                                       "returned, though one was sent"));
}

TEST_CASE("a FedHL client that returns another alpha or huge factors fails alone",
          "[trust][fedhl]") {
  // Both would overflow W_t to Inf, whose SVD then fails the whole run:
  // alpha 1e30 through the scale s = α/r, factors of 1e15 through B A.
  const fs::path out = fresh_dir("trust-scale");
  const std::string endpoint = "tcp://127.0.0.1:47623";
  const auto extra = join(liveness(endpoint), {"--set", "strategy.name=\"fedhl\""});
  Process server(command("server", out, extra), out / "server.log", kEnv);
  Process client0(join(command("client", out, extra), {"--id", "0"}), out / "client-0.log", kEnv);
  Process client1(join(command("client", out, extra), {"--id", "1"}), out / "client-1.log", kEnv);
  HandClient hand(endpoint, "hand", "client-2");
  register_by_hand(hand, "client-2", 4);
  int answered = 0;
  while (auto instruction = hand.next(std::chrono::seconds(60))) {
    if (std::holds_alternative<wire::ShutdownBody>(instruction->body)) break;
    const auto* fit = std::get_if<wire::FitInsBody>(&instruction->body);
    if (fit == nullptr) continue;
    double alpha = fit->alpha;
    lorafed::NamedTensors tensors = instruction->tensors;
    if (answered % 2 == 0) {
      alpha = 1e30;  // the scale is the server's
    } else {
      for (auto& [name, tensor] : tensors) tensor = at::full_like(tensor, 1e15);
    }
    hand.send(wire::Envelope{instruction->round, "client-2", wire::kServerId,
                             wire::FitResBody{alpha, 50, {}}, tensors});
    ++answered;
  }
  require_exit(server, 0, out / "server.log");
  require_exit(client0, 0, out / "client-0.log", 30);
  require_exit(client1, 0, out / "client-1.log", 30);
  CHECK(answered == 3);
  CHECK(rounds_run(out) == 3);
  const auto results = fit_results(out);
  CHECK(results.at("client-0") == 3);
  CHECK(results.at("client-1") == 3);
  CHECK_FALSE(results.contains("client-2"));
  const std::string log = read_file(out / "server.log");
  CHECK_THAT(log, Catch::Matchers::Contains("client-2 failed: invalid update: returned alpha "
                                            "1e+30, was sent alpha 8"));
  CHECK_THAT(log, Catch::Matchers::Contains("magnitude 2^16 or more"));
  const json summary = read_summary(out);
  CHECK(std::isfinite(summary["final_loss"].get<double>()));
}

TEST_CASE("a hostile registration cannot make a FedHL server allocate, nor a broker hoard",
          "[trust][security]") {
  const fs::path out = fresh_dir("trust-registration");
  const std::string clients_endpoint = "tcp://127.0.0.1:47614";
  const std::string server_endpoint = "tcp://127.0.0.1:47615";
  const auto extra = join(liveness(clients_endpoint),
                          {"--set", "strategy.name=\"fedhl\"", "--set", "broker.embedded=false",
                           "--set", "broker.server_endpoint=\"" + server_endpoint + "\""});
  Process broker(command("broker", out, extra), out / "broker.log", kEnv);
  REQUIRE(wait_until(
      [&] { return read_file(out / "broker.log").find("broker: clients on") != std::string::npos; },
      std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Each flood: 20 ids, each a Register followed by 10 frames of 1 MiB
  // (200 MiB), and 500 more ids with plain registrations. The first one
  // warms the allocator (freed memory is kept for reuse); a broker that
  // held what it was sent would grow by 200 MiB with each further flood.
  auto flood = [&](int wave) {
    HandClient flooder(clients_endpoint, "flood-" + std::to_string(wave));
    const std::string megabyte(1 << 20, 'x');
    for (int id = 0; id < 20; ++id) {
      std::vector<std::string> frames = {
          register_frame("flood-" + std::to_string(wave) + "-" + std::to_string(id), 4, "m")};
      for (int i = 0; i < 10; ++i) frames.push_back(megabyte);
      flooder.send_frames(frames);
    }
    for (int id = 0; id < 500; ++id) {
      flooder.send_frames(
          {register_frame("many-" + std::to_string(wave) + "-" + std::to_string(id), 4, "m")});
    }
    // The broker answers each refusal; no answer for 3 s means all were read.
    int answers = 0;
    while (auto reply = flooder.next(std::chrono::seconds(3))) ++answers;
    CHECK(answers >= 20);
  };
  flood(0);
  const std::int64_t warm_kib = resident_kib(broker.pid());
  flood(1);
  flood(2);
  const std::int64_t after_kib = resident_kib(broker.pid());
  INFO("broker RSS " << warm_kib << " KiB after the first flood, " << after_kib
                     << " KiB after two more");
  CHECK(after_kib - warm_kib < 64 * 1024);

  Process server(command("server", out, extra), out / "server.log", kEnv);
  Process client0(join(command("client", out, extra), {"--id", "0"}), out / "client-0.log", kEnv);
  Process client1(join(command("client", out, extra), {"--id", "1"}), out / "client-1.log", kEnv);
  // Client 2 learns the model id from a refusal, then claims rank 2^40,
  // then 8 (the configuration says 4).
  HandClient hand(clients_endpoint, "hand", "client-2");
  std::vector<std::string> refusals;
  std::string model_id = "?";
  for (const std::int64_t rank : {std::int64_t{4}, std::int64_t{1} << 40, std::int64_t{8}}) {
    hand.send_frames({register_frame("client-2", rank, model_id)});
    while (auto reply = hand.next(std::chrono::seconds(60))) {
      if (const auto* error = std::get_if<wire::ErrorBody>(&reply->body);
          error != nullptr && error->code == wire::ErrorCode::kRefused) {
        refusals.push_back(error->text);
        std::smatch match;
        if (std::regex_search(error->text, match, std::regex("server's model '([^']+)'"))) {
          model_id = match[1].str();
        }
        break;
      }
    }
  }
  Process client2(join(command("client", out, extra), {"--id", "2"}), out / "client-2.log", kEnv);
  require_exit(server, 0, out / "server.log");
  for (Process* client : {&client0, &client1, &client2})
    CHECK(client->wait(std::chrono::seconds(30)) == 0);
  broker.kill_hard();
  REQUIRE(refusals.size() == 3);
  CHECK_THAT(refusals[1], Catch::Matchers::Contains("rank 1099511627776 is outside 1.."));
  CHECK_THAT(refusals[2], Catch::Matchers::Contains("rank 8, but"));
  CHECK(rounds_run(out) == 3);
  CHECK(fit_results(out).at("client-2") == 3);
}

TEST_CASE("server, broker and clients stop cleanly on SIGINT and SIGTERM", "[trust][signals]") {
  const fs::path out = fresh_dir("trust-signals");
  const std::string clients_endpoint = "tcp://127.0.0.1:47616";
  const auto extra =
      join(liveness(clients_endpoint),
           {"--set", "federation.rounds=200", "--set", "train.local_epochs=2", "--set",
            "broker.embedded=false", "--set", "broker.server_endpoint=\"tcp://127.0.0.1:47617\""});
  Process broker(command("broker", out, extra), out / "broker.log", kEnv);
  Process server(command("server", out, extra), out / "server.log", kEnv);
  std::vector<std::unique_ptr<Process>> clients;
  for (int id = 0; id < 3; ++id) {
    clients.push_back(
        std::make_unique<Process>(join(command("client", out, extra), {"--id", std::to_string(id)}),
                                  out / ("client-" + std::to_string(id) + ".log"), kEnv));
  }
  REQUIRE(wait_until([&] { return checkpointed_round(out) >= 2; }, std::chrono::seconds(120)));
  ::kill(server.pid(), SIGINT);
  require_exit(server, 130, out / "server.log", 60);
  ::kill(clients[0]->pid(), SIGTERM);
  require_exit(*clients[0], 130, out / "client-0.log", 60);
  ::kill(clients[1]->pid(), SIGINT);
  require_exit(*clients[1], 130, out / "client-1.log", 60);
  ::kill(broker.pid(), SIGTERM);
  require_exit(broker, 0, out / "broker.log", 60);
  clients[2]->kill_hard();

  // Every record is whole, and they stop at the last complete round, which
  // the checkpoint holds: a resumed run does the interrupted round again.
  const int checkpointed = checkpointed_round(out);
  int last_round = 0;
  for (const json& line : read_metrics(out)) {
    if (line["type"] == "round") last_round = std::max(last_round, line["round"].get<int>());
  }
  CHECK(last_round == checkpointed);
  CHECK_THAT(read_file(out / "server.log"), Catch::Matchers::Contains("continue with --resume"));
  // The two clients stopped by a signal said so: the broker did not wait to find them lost.
  const std::string broker_log = read_file(out / "broker.log");
  CHECK_THAT(broker_log, Catch::Matchers::Contains("stopped by SIGTERM") &&
                             Catch::Matchers::Contains("client-0 left (it stopped)") &&
                             Catch::Matchers::Contains("client-1 left (it stopped)") &&
                             !Catch::Matchers::Contains("client-0 lost") &&
                             !Catch::Matchers::Contains("client-1 lost"));

  // `simulate` too.
  const fs::path simulated = fresh_dir("trust-signals-simulate");
  Process simulate(command("simulate", simulated,
                           {"--set", "federation.rounds=200", "--set", "train.local_epochs=2",
                            "--set", "transport.endpoint=\"tcp://127.0.0.1:47618\""}),
                   simulated / "simulate.log", kEnv);
  REQUIRE(
      wait_until([&] { return checkpointed_round(simulated) >= 1; }, std::chrono::seconds(120)));
  ::kill(simulate.pid(), SIGTERM);
  require_exit(simulate, 130, simulated / "simulate.log", 60);
}
