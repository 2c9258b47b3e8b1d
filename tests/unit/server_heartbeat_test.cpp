// The server stays heard: while it waits for messages (a wait never outlasts
// the next heartbeat), and while it works (ServerHeartbeat's thread sends the
// heartbeats, never using the channel at the same time as the server's).
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "src/server/client_roster.hpp"
#include "src/server/server_heartbeat.hpp"
#include "src/server/server_link.hpp"
#include "unit/runtime_fakes.hpp"

using namespace lorafed;
using namespace std::chrono_literals;

namespace {

// Counts the heartbeats sent, and notes if two threads ever use it at once.
class CountingChannel final : public Channel {
 public:
  void send(Message message) override {
    const Use use(*this);
    if (wire::decode_header(message).kind == wire::BodyKind::kHeartbeat) ++heartbeats_;
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    const Use use(*this);
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, 2ms));
    return std::nullopt;
  }
  void close() override {}

  int heartbeats() const { return heartbeats_; }
  bool overlapped() const { return overlapped_; }

 private:
  struct Use {
    explicit Use(CountingChannel& channel) : channel(channel) {
      if (channel.users_.fetch_add(1) != 0) channel.overlapped_ = true;
      std::this_thread::sleep_for(200us);  // widen the window an overlap would need
    }
    ~Use() { channel.users_.fetch_sub(1); }
    CountingChannel& channel;
  };
  std::atomic<int> users_{0};
  std::atomic<bool> overlapped_{false};
  std::atomic<int> heartbeats_{0};
};

}  // namespace

TEST_CASE("server link: a wait for a message never outlasts the next heartbeat", "[server]") {
  // A heartbeat interval shorter than the link's longest wait (200 ms): the
  // broker's heartbeat_timeout_s may be as short as two intervals.
  test::ManualClock clock;
  test::FakeChannel channel{clock};  // a wait that finds nothing moves the clock by its length
  ClientRoster roster(ModelSpec{"mlp-test", {{"fc1", 4, 2}}, {}}, {});
  ServerLink link{channel, roster, ServerLink::Options{{}, {}, 50ms}, clock};
  const auto deadline = clock.now() + 1s;
  while (clock.now() < deadline) link.receive_until(deadline);
  int heartbeats = 0;
  for (const auto& sent : channel.take_sent()) {
    heartbeats += std::holds_alternative<wire::HeartbeatBody>(sent.envelope.body) ? 1 : 0;
  }
  CHECK(heartbeats >= 19);  // one every 50 to 51 ms; 5 when each wait took 200 ms
}

TEST_CASE("server heartbeat: a server busy with its own work stays heard", "[server]") {
  CountingChannel channel;
  ClientRoster roster(ModelSpec{"mlp-test", {{"fc1", 4, 2}}, {}}, {});
  ServerLink link{channel, roster, ServerLink::Options{{}, {}, 10ms}};
  {
    const ServerHeartbeat heartbeat(link, 10ms);
    // The server's thread evaluates for 200 ms and sends nothing itself.
    std::this_thread::sleep_for(200ms);
    // One every 10 to 15 ms; a loaded machine may delay some, never all.
    CHECK(channel.heartbeats() >= 4);
  }
  const int sent = channel.heartbeats();
  std::this_thread::sleep_for(50ms);
  CHECK(channel.heartbeats() == sent);  // gone with the ServerHeartbeat
}

TEST_CASE("server heartbeat: one thread at a time on the channel", "[server]") {
  CountingChannel channel;
  ClientRoster roster(ModelSpec{"mlp-test", {{"fc1", 4, 2}}, {}}, {});
  ServerLink link{channel, roster, ServerLink::Options{{}, {}, 1ms}};
  const ServerHeartbeat heartbeat(link, 1ms);
  // The server's thread receives and sends while heartbeats go out beside it.
  const auto until = std::chrono::steady_clock::now() + 150ms;
  while (std::chrono::steady_clock::now() < until) {
    link.receive_until(RuntimeClock::steady().now() + 3ms);
    link.send(wire::Envelope{1, wire::kServerId, "client-0", wire::FitInsBody{}, {}});
  }
  CHECK(channel.heartbeats() > 10);
  CHECK_FALSE(channel.overlapped());
}
