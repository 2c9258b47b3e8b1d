#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "src/plugin_registry.hpp"

using namespace lorafed;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<Transport> make_transport(const std::string& name) {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.transport(name);
  return keep_library_alive(plugin.factory->create(ConfigTable()), plugin.factory);
}

Frame text_frame(const std::string& text) {
  return Frame::copy_of(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

std::string text_of(const Frame& frame) {
  return std::string(reinterpret_cast<const char*>(frame.data), frame.size);
}

std::optional<Message> receive_within(Channel& channel, std::chrono::milliseconds total) {
  const auto deadline = std::chrono::steady_clock::now() + total;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto message = channel.receive(50ms)) return message;
  }
  return std::nullopt;
}

void exchange_messages(Transport& transport, const std::string& endpoint) {
  auto server = transport.bind(endpoint);
  auto alice = transport.connect(endpoint, "alice");
  auto bob = transport.connect(endpoint, "bob");

  alice->send(Message{"", {text_frame("hello"), text_frame(std::string(100000, 'x'))}});
  bob->send(Message{"", {text_frame("from bob")}});
  std::map<std::string, Message> got;
  for (int i = 0; i < 2; ++i) {
    auto message = receive_within(*server, 5s);
    REQUIRE(message);
    got[message->peer] = std::move(*message);
  }
  REQUIRE(got.at("alice").frames.size() == 2);
  CHECK(text_of(got.at("alice").frames[0]) == "hello");
  CHECK(got.at("alice").frames[1].size == 100000);
  CHECK(text_of(got.at("bob").frames[0]) == "from bob");

  // Replies are routed by peer.
  server->send(Message{"bob", {text_frame("to bob"), text_frame("second")}});
  server->send(Message{"alice", {text_frame("to alice")}});
  auto to_bob = receive_within(*bob, 5s);
  auto to_alice = receive_within(*alice, 5s);
  REQUIRE(to_bob);
  REQUIRE(to_alice);
  CHECK(to_bob->frames.size() == 2);
  CHECK(text_of(to_bob->frames[0]) == "to bob");
  CHECK(text_of(to_alice->frames[0]) == "to alice");
  CHECK_FALSE(alice->receive(10ms));
}

}  // namespace

TEST_CASE("inproc transport routes multi-frame messages between peers", "[transport]") {
  exchange_messages(*make_transport("inproc"), "inproc://transport-test");
}

TEST_CASE("inproc transport shares frames instead of copying them", "[transport]") {
  auto transport = make_transport("inproc");
  auto server = transport->bind("inproc://zero-copy");
  auto client = transport->connect("inproc://zero-copy", "c");
  const Frame frame = text_frame("payload");
  client->send(Message{"", {frame}});
  auto got = receive_within(*server, 1s);
  REQUIRE(got);
  CHECK(got->frames[0].data == frame.data);
}

TEST_CASE("inproc transport refuses a second bind and a connect to nothing", "[transport]") {
  auto transport = make_transport("inproc");
  auto server = transport->bind("inproc://taken");
  CHECK_THROWS_AS(transport->bind("inproc://taken"), Error);
  CHECK_THROWS_WITH(transport->connect("inproc://nothing-here", "x"),
                    Catch::Matchers::Contains("nothing is bound"));
}

TEST_CASE("zmq transport routes multi-frame messages over tcp", "[transport]") {
  exchange_messages(*make_transport("zmq"), "tcp://127.0.0.1:47311");
}

TEST_CASE("zmq transport routes multi-frame messages over ipc", "[transport]") {
  exchange_messages(*make_transport("zmq"),
                    "ipc:///tmp/lorafed-test-" + std::to_string(::getpid()) + ".sock");
}

TEST_CASE("zmq transport reports an endpoint it cannot bind", "[transport]") {
  CHECK_THROWS_WITH(make_transport("zmq")->bind("tcp://256.1.1.1:1"),
                    Catch::Matchers::Contains("cannot bind"));
}

namespace {

// A transport made from `toml` as its [transport] table.
std::shared_ptr<Transport> zmq_with(const std::string& toml) {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.transport("zmq");
  return keep_library_alive(plugin.factory->create(ConfigTable::parse_string(toml, "test")),
                            plugin.factory);
}

std::string toml_path(const std::filesystem::path& path) {
  return "\"" + path.string() + "\"";
}

}  // namespace

TEST_CASE("zmq transport: each side of a broker admits only its own keys, by name",
          "[transport][curve]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("lorafed-curve-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "clients");
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto factory = registry.transport("zmq").factory;
  for (const char* who : {"broker", "server", "clients/alice"}) {
    CHECK_THAT(factory->write_key_pair((dir / who).string()), Catch::Contains("public key"));
  }
  CHECK_THROWS_WITH(factory->write_key_pair((dir / "server").string()), Catch::Contains("exists"));
  auto broker = zmq_with("curve_secret_key = " + toml_path(dir / "broker.key") +
                         "\ncurve_allowed_keys = " + toml_path(dir / "clients") +
                         "\ncurve_allowed_server_key = " + toml_path(dir / "server.pub"));
  auto server_side = broker->bind("tcp://127.0.0.1:47321", Peers::kServer);
  auto client_side = broker->bind("tcp://127.0.0.1:47322", Peers::kClients);
  auto as = [&](const std::string& key) {
    return zmq_with("curve_secret_key = " + toml_path(dir / (key + ".key")) +
                    "\ncurve_server_key = " + toml_path(dir / "broker.pub") +
                    "\nsend_timeout_ms = 200");
  };
  auto alice = as("clients/alice");
  auto server = as("server");
  // Alice's key on the server's endpoint, and the server's on the clients': refused.
  auto alice_as_server = alice->connect("tcp://127.0.0.1:47321", "server");
  auto server_as_client = server->connect("tcp://127.0.0.1:47322", "client-0");
  try {
    alice_as_server->send(Message{"", {text_frame("I am the server")}});
    server_as_client->send(Message{"", {text_frame("I am a client")}});
  } catch (const Error&) {
    // Refused in the handshake: the send may time out.
  }
  CHECK_FALSE(receive_within(*server_side, 1500ms));
  CHECK_FALSE(receive_within(*client_side, 100ms));
  // Each on its own endpoint: let in, under its key's name.
  auto alice_channel = alice->connect("tcp://127.0.0.1:47322", "client-0");
  auto server_channel = server->connect("tcp://127.0.0.1:47321", "server");
  alice_channel->send(Message{"", {text_frame("hello")}});
  server_channel->send(Message{"", {text_frame("hello")}});
  const auto from_alice = receive_within(*client_side, 5s);
  const auto from_server = receive_within(*server_side, 5s);
  REQUIRE(from_alice);
  REQUIRE(from_server);
  CHECK(from_alice->authenticated_as == "alice");
  CHECK(from_server->authenticated_as == "server");
  std::filesystem::remove_all(dir);
}

TEST_CASE("zmq transport: binding the server's endpoint with CURVE needs the server's key",
          "[transport][curve]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("lorafed-curve-b-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "clients");
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto factory = registry.transport("zmq").factory;
  factory->write_key_pair((dir / "broker").string());
  factory->write_key_pair((dir / "clients/alice").string());
  auto broker = zmq_with("curve_secret_key = " + toml_path(dir / "broker.key") +
                         "\ncurve_allowed_keys = " + toml_path(dir / "clients"));
  CHECK_THROWS_AS(broker->bind("tcp://127.0.0.1:47323", Peers::kServer), ConfigError);
  CHECK_THROWS_WITH(
      zmq_with("curve_secret_key = " + toml_path(dir / "broker.key") +
               "\ncurve_allowed_keys = " + toml_path(dir / "clients") +
               "\ncurve_allowed_server_key = " + toml_path(dir / "clients/alice.pub")),
      Catch::Contains("also a client key"));
  std::filesystem::remove_all(dir);
}
