#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>

#include "lorafed/error.hpp"
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
