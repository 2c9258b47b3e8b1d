#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "lorafed/transport.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

struct BrokerOptions {
  std::chrono::milliseconds heartbeat_interval{1000};
  // A client not heard from for this long is declared lost to the server.
  std::chrono::milliseconds heartbeat_timeout{10'000};
  wire::DecodeLimits limits;
};

// The message broker (docs/architecture.md, "Broker"): clients connect to
// `clients`, the server to `server`; neither accepts connections from the
// other. It reads only frame 0 of each message (wire::decode_header) and
// forwards the frames untouched.
//
// - Routes by client id: a client's route is the connection it was last
//   heard on, so a client that reconnects or restarts under the same id is
//   found again.
// - Tracks liveness: any message from a client counts as a heartbeat. A
//   client silent past heartbeat_timeout is reported to the server as an
//   Error(Disconnected) sent in its name. Every heartbeat_interval the
//   broker sends each client connection a Heartbeat, so clients notice a
//   lost broker.
// - Holds the server's last instruction to each client until that client
//   answers it, and delivers it again when the client registers anew (it
//   restarted, or the broker did).
// - Remembers each client's last Register and replays the live clients' to
//   a server that connects (or reconnects after heartbeat_timeout of
//   silence), so a restarted server learns who is there.
//
// Used by one thread: run() polls both channels until `stop` is set.
class Broker {
 public:
  Broker(Channel& clients, Channel& server, BrokerOptions options);

  void run(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;

  struct Route {
    std::string peer;  // the client-side connection it was last heard on
    Clock::time_point last_heard;
    bool alive = false;
    std::optional<Message> registration;  // its last Register, for replay to a new server
    std::optional<Message> held;          // the server's last instruction, until answered
    std::uint32_t held_round = 0;
    wire::BodyKind held_kind = wire::BodyKind::kFitIns;
    // When `held` last went to the client: registrations it queued while the
    // broker was away arrive together and get it once.
    std::optional<Clock::time_point> held_sent;
  };

  void from_client(Message message, Clock::time_point now);
  void from_server(Message message, Clock::time_point now);
  void tick(Clock::time_point now);
  void to_server(const Message& message);
  void to_client(const std::string& peer, const Message& message);
  // An Error to a client connection, `about` the client id it concerns.
  void send_error(const std::string& peer, const std::string& about, wire::ErrorCode code,
                  const std::string& text);

  Channel& clients_;
  Channel& server_;
  BrokerOptions options_;
  std::map<std::string, Route> routes_;  // by client id
  std::string server_peer_ = wire::kServerId;
  std::optional<Clock::time_point> server_last_heard_;
  Clock::time_point next_tick_{};
};

}  // namespace lorafed
