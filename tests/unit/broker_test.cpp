// The broker's trust decisions (docs/deployment.md, "Threat model") over
// in-memory channels and a synthetic clock: who a client is, who the server
// is, who is alive, and what it keeps in memory.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <set>

#include "src/broker/broker.hpp"
#include "unit/runtime_fakes.hpp"

using namespace lorafed;
using namespace lorafed::test;
using namespace std::chrono_literals;

namespace {

wire::RegisterBody registration() {
  return wire::RegisterBody{4, "mlp", 100};
}

struct BrokerRig {
  ManualClock clock;
  FakeChannel clients{clock};
  FakeChannel server{clock};
  Broker broker;

  explicit BrokerRig(std::size_t max_routes = 100)
      : broker(clients, server, options(max_routes), clock) {}

  static BrokerOptions options(std::size_t max_routes) {
    BrokerOptions options;
    options.heartbeat_interval = 1000ms;
    options.heartbeat_timeout = 5000ms;
    options.max_routes = max_routes;
    return options;
  }
  // Handles everything queued, without moving the clock past a tick.
  void drain() {
    while (!clients.inbox_empty() || !server.inbox_empty()) broker.poll(0ms);
  }
  void server_says_hello(const std::string& peer = "server") {
    server.push(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}},
                peer);
    drain();
  }
  void register_client(const std::string& id, const std::string& key = "") {
    clients.push(from_client(id, registration()), "conn-" + id, key);
    drain();
  }
};

std::vector<wire::Envelope> of_kind(const std::vector<FakeChannel::Sent>& sent,
                                    wire::BodyKind kind) {
  std::vector<wire::Envelope> result;
  for (const auto& message : sent) {
    if (wire::kind_of(message.envelope.body) == kind) result.push_back(message.envelope);
  }
  return result;
}

}  // namespace

TEST_CASE("broker: registrations reach the server once, when it is there", "[broker]") {
  BrokerRig rig;
  rig.register_client("client-0");
  CHECK(rig.server.take_sent().empty());  // nobody to tell yet
  rig.server_says_hello();
  auto sent = rig.server.take_sent();
  REQUIRE(of_kind(sent, wire::BodyKind::kRegister).size() == 1);
  CHECK(sent.front().envelope.sender == "client-0");
  // A second heartbeat from the same server replays nothing.
  rig.server_says_hello();
  CHECK(of_kind(rig.server.take_sent(), wire::BodyKind::kRegister).empty());
  rig.register_client("client-1");
  CHECK(of_kind(rig.server.take_sent(), wire::BodyKind::kRegister).size() == 1);
}

TEST_CASE("broker: a client id is bound to the key that registered it", "[broker]") {
  BrokerRig rig;
  rig.server_says_hello();
  rig.register_client("client-0", "alice");
  rig.register_client("client-1", "bob");
  rig.server.take_sent();
  // Bob claims to be client-0: results, a registration, an error.
  rig.clients.push(from_client("client-0", wire::FitResBody{1, 10, {}}, 1), "conn-bob", "bob");
  rig.clients.push(from_client("client-0", registration()), "conn-bob", "bob");
  rig.clients.push(from_client("client-0", wire::ErrorBody{wire::ErrorCode::kClientFailure, "x"}),
                   "conn-bob", "bob");
  rig.drain();
  CHECK(rig.server.take_sent().empty());
  // Alice still speaks for client-0, and her results arrive.
  rig.clients.push(from_client("client-0", wire::FitResBody{1, 10, {}}, 1), "conn-alice", "alice");
  rig.drain();
  const auto sent = rig.server.take_sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].envelope.sender == "client-0");
  // Instructions for client-0 still go to Alice's connection.
  rig.server.push(to_client("client-0", wire::ShutdownBody{"bye"}), "server");
  rig.drain();
  const auto delivered = of_kind(rig.clients.take_sent(), wire::BodyKind::kShutdown);
  REQUIRE(delivered.size() == 1);
}

TEST_CASE("broker: no client can report another lost", "[broker]") {
  BrokerRig rig;
  rig.server_says_hello();
  rig.register_client("client-0");
  rig.register_client("client-1");
  rig.server.take_sent();
  rig.clients.take_sent();
  // client-1 says client-0 is disconnected, in client-0's name and in its own.
  rig.clients.push(from_client("client-0", wire::ErrorBody{wire::ErrorCode::kDisconnected, "gone"}),
                   "conn-client-1");
  rig.clients.push(from_client("client-1", wire::ErrorBody{wire::ErrorCode::kDisconnected, "gone"}),
                   "conn-client-1");
  rig.drain();
  CHECK(rig.server.take_sent().empty());
  const auto answers = of_kind(rig.clients.take_sent(), wire::BodyKind::kError);
  REQUIRE(answers.size() == 2);
  CHECK(std::get<wire::ErrorBody>(answers[0].body).code == wire::ErrorCode::kUnexpected);
  // Nor send an instruction.
  rig.clients.push(from_client("client-1", wire::ShutdownBody{"stop"}), "conn-client-1");
  rig.drain();
  CHECK(rig.server.take_sent().empty());
}

TEST_CASE("broker: a client that leaves is reported lost at once, in its own name only",
          "[broker]") {
  BrokerRig rig;
  rig.server_says_hello();
  rig.register_client("client-0", "key-0");
  rig.register_client("client-1", "key-1");
  rig.server.take_sent();
  const wire::ErrorBody leaving{wire::ErrorCode::kLeaving, "the client stopped"};
  // client-1's key cannot say client-0 leaves.
  rig.clients.push(from_client("client-0", leaving), "conn-client-1", "key-1");
  rig.drain();
  CHECK(rig.server.take_sent().empty());
  // client-0 leaves: the server hears it lost now, not heartbeat_timeout later.
  rig.clients.push(from_client("client-0", leaving), "conn-client-0", "key-0");
  rig.drain();
  const auto notices = of_kind(rig.server.take_sent(), wire::BodyKind::kError);
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].sender == "client-0");
  CHECK(std::get<wire::ErrorBody>(notices[0].body).code == wire::ErrorCode::kDisconnected);
  CHECK(std::get<wire::ErrorBody>(notices[0].body).text == "the client stopped");
  // Said twice, or followed by silence: reported once.
  rig.clients.push(from_client("client-0", leaving), "conn-client-0", "key-0");
  rig.drain();
  for (int second = 0; second < 7; ++second) {
    rig.clock.advance(1s);
    rig.clients.push(from_client("client-1", wire::HeartbeatBody{}), "conn-client-1", "key-1");
    rig.broker.poll(0ms);
  }
  CHECK(of_kind(rig.server.take_sent(), wire::BodyKind::kError).empty());
  // Back again, it registers as after any loss.
  rig.clients.take_sent();
  rig.clients.push(from_client("client-0", wire::HeartbeatBody{}), "conn-client-0", "key-0");
  rig.drain();
  const auto answers = of_kind(rig.clients.take_sent(), wire::BodyKind::kError);
  REQUIRE(answers.size() == 1);
  CHECK(std::get<wire::ErrorBody>(answers[0].body).code == wire::ErrorCode::kNotRegistered);
}

TEST_CASE("broker: liveness is its own judgement", "[broker]") {
  BrokerRig rig;
  rig.server_says_hello();
  rig.register_client("client-0");
  rig.register_client("client-1");
  rig.server.take_sent();
  // client-1 keeps talking, client-0 falls silent.
  for (int second = 0; second < 7; ++second) {
    rig.clock.advance(1s);
    rig.clients.push(from_client("client-1", wire::HeartbeatBody{}), "conn-client-1");
    rig.server.push(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}},
                    "server");
    rig.broker.poll(0ms);
  }
  const auto notices = of_kind(rig.server.take_sent(), wire::BodyKind::kError);
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].sender == "client-0");
  CHECK(std::get<wire::ErrorBody>(notices[0].body).code == wire::ErrorCode::kDisconnected);
  // An instruction for the lost client is not held; a Shutdown is, until it is back.
  rig.server.push(to_client("client-0", wire::FitInsBody{}, 3), "server");
  rig.server.push(to_client("client-0", wire::ShutdownBody{"over"}), "server");
  rig.drain();
  rig.clients.take_sent();
  rig.register_client("client-0");
  const auto delivered = rig.clients.take_sent();
  CHECK(of_kind(delivered, wire::BodyKind::kFitIns).empty());
  CHECK(of_kind(delivered, wire::BodyKind::kShutdown).size() == 1);
}

TEST_CASE("broker: one client's messages keep alive the others on its connection and key only",
          "[broker]") {
  BrokerRig rig;
  rig.server_says_hello();
  // A host serving client-0 and client-1 on one connection under key "host";
  // client-2 on a connection of its own under the same key; client-3 on the
  // host's connection name but under another key.
  for (const std::string id : {"client-0", "client-1"}) {
    rig.clients.push(from_client(id, registration()), "host-connection", "host");
  }
  rig.clients.push(from_client("client-2", registration()), "other-connection", "host");
  rig.clients.push(from_client("client-3", registration()), "host-connection", "intruder");
  rig.drain();
  rig.server.take_sent();
  // Only client-0 heartbeats, on the host's connection under the host's key.
  for (int second = 0; second < 7; ++second) {
    rig.clock.advance(1s);
    rig.clients.push(from_client("client-0", wire::HeartbeatBody{}), "host-connection", "host");
    rig.server.push(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}},
                    "server");
    rig.broker.poll(0ms);
  }
  std::set<std::string> lost;
  for (const auto& notice : of_kind(rig.server.take_sent(), wire::BodyKind::kError)) {
    CHECK(std::get<wire::ErrorBody>(notice.body).code == wire::ErrorCode::kDisconnected);
    lost.insert(notice.sender);
  }
  CHECK(lost == std::set<std::string>{"client-2", "client-3"});
  // The connection falls silent: both of its clients are lost with it.
  rig.clock.advance(6s);
  rig.server.push(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}},
                  "server");
  rig.broker.poll(0ms);
  lost.clear();
  for (const auto& notice : of_kind(rig.server.take_sent(), wire::BodyKind::kError)) {
    lost.insert(notice.sender);
  }
  CHECK(lost == std::set<std::string>{"client-0", "client-1"});
}

TEST_CASE("broker: one server, and a second is refused while the first is alive", "[broker]") {
  BrokerRig rig;
  rig.server_says_hello("server-a");
  rig.register_client("client-0");
  rig.server.take_sent();
  rig.server_says_hello("server-b");
  const auto refusals = rig.server.take_sent();
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].peer == "server-b");
  CHECK(std::get<wire::ErrorBody>(refusals[0].envelope.body).code == wire::ErrorCode::kRefused);
  // server-b's instruction does not reach the client; results still go to server-a.
  rig.server.push(to_client("client-0", wire::ShutdownBody{"hijack"}), "server-b");
  rig.drain();
  CHECK(rig.clients.take_sent().empty());
  rig.server.take_sent();  // the refusal of server-b's instruction
  rig.clients.push(from_client("client-0", wire::FitResBody{1, 10, {}}, 1), "conn-client-0");
  rig.drain();
  const auto forwarded = rig.server.take_sent();
  REQUIRE(forwarded.size() == 1);
  CHECK(forwarded[0].peer == "server-a");
  // Once server-a has been silent past the timeout, a new server takes over
  // and learns who is there.
  rig.clock.advance(6s);
  rig.clients.push(from_client("client-0", wire::HeartbeatBody{}), "conn-client-0");
  rig.drain();
  rig.server_says_hello("server-b");
  const auto replayed = rig.server.take_sent();
  REQUIRE(of_kind(replayed, wire::BodyKind::kRegister).size() == 1);
  CHECK(replayed[0].peer == "server-b");
}

TEST_CASE("broker: what it holds is bounded", "[broker]") {
  BrokerRig rig(/*max_routes=*/4);
  rig.server_says_hello();
  SECTION("a Register with extra frames or a large frame is refused, nothing kept") {
    Message bloated = wire::encode(from_client("client-0", registration()));
    bloated.peer = "conn-0";
    for (int i = 0; i < 25; ++i)
      bloated.frames.push_back(Frame::adopt(std::vector<std::byte>(4096)));
    rig.clients.push_raw(bloated);
    rig.drain();
    CHECK(rig.broker.route_count() == 0);
    CHECK(rig.server.take_sent().empty());
    wire::RegisterBody big = registration();
    big.model_id = std::string(8000, 'm');
    rig.clients.push(from_client("client-0", big), "conn-0");
    rig.drain();
    CHECK(rig.broker.route_count() == 0);
    const auto errors = of_kind(rig.clients.take_sent(), wire::BodyKind::kError);
    REQUIRE(errors.size() == 2);
    // Frames beyond what its header counts make it malformed; one big frame, too large.
    CHECK(std::get<wire::ErrorBody>(errors[0].body).code == wire::ErrorCode::kMalformed);
    CHECK(std::get<wire::ErrorBody>(errors[1].body).code == wire::ErrorCode::kTooLarge);
  }
  SECTION("at most max_routes ids; a lost one makes room, a live one does not") {
    for (int i = 0; i < 4; ++i) rig.register_client("client-" + std::to_string(i));
    rig.register_client("client-4");
    CHECK(rig.broker.route_count() == 4);
    const auto refused = of_kind(rig.clients.take_sent(), wire::BodyKind::kError);
    REQUIRE_FALSE(refused.empty());
    CHECK(refused.back().recipient == "client-4");
    CHECK(rig.broker.held_register_bytes() <= 4 * Broker::kMaxRegisterBytes);
    // client-0 goes silent and is lost; then client-4 gets its place.
    for (int second = 0; second < 7; ++second) {
      rig.clock.advance(1s);
      for (int i = 1; i < 4; ++i) {
        rig.clients.push(from_client("client-" + std::to_string(i), wire::HeartbeatBody{}),
                         "conn-client-" + std::to_string(i));
      }
      rig.drain();
      rig.broker.poll(0ms);
    }
    rig.register_client("client-4");
    CHECK(rig.broker.route_count() == 4);
    rig.server.take_sent();
    rig.clients.push(from_client("client-4", wire::FitResBody{1, 1, {}}, 1), "conn-client-4");
    rig.drain();
    CHECK(rig.server.take_sent().size() == 1);
  }
  SECTION("an id the server refuses is forgotten") {
    rig.register_client("intruder-7");
    CHECK(rig.broker.route_count() == 1);
    rig.server.push(to_client("intruder-7", wire::ErrorBody{wire::ErrorCode::kRefused, "no"}),
                    "server");
    rig.drain();
    CHECK(rig.broker.route_count() == 0);
    CHECK(of_kind(rig.clients.take_sent(), wire::BodyKind::kError).size() == 1);
  }
  SECTION("a message from an id that never registered creates nothing") {
    rig.clients.push(from_client("client-9", wire::FitResBody{1, 1, {}}, 1), "conn-9");
    rig.drain();
    CHECK(rig.broker.route_count() == 0);
    CHECK(rig.server.take_sent().empty());
  }
}
