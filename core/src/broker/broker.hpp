#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "lorafed/transport.hpp"
#include "src/runtime_clock.hpp"
#include "src/wire/envelope_reader.hpp"

namespace lorafed {

struct BrokerOptions {
  std::chrono::milliseconds heartbeat_interval{1000};
  // A client not heard from for this long is declared lost to the server.
  std::chrono::milliseconds heartbeat_timeout{10'000};
  wire::DecodeLimits limits;
  // Client ids the broker keeps a route for. When all are taken, the route
  // lost longest ago makes room; with none lost, a new id is refused.
  std::size_t max_routes = 10'000;
};

// The message broker (docs/deployment.md): clients connect to `clients`,
// the server to `server`; neither accepts connections from the other. It
// reads only frame 0 of each message (wire::decode_header) and forwards the
// frames untouched. It is the one place that decides who a client is and
// whether it is alive (docs/deployment.md, "Threat model"):
//
// - Identity: a client id is bound to the name the transport authenticated
//   its first Register under (Message::authenticated_as, the CURVE key's
//   name); a message that claims the id from another key is dropped and
//   logged. Without authentication every name is empty and ids are trusted.
// - What a client may send: Register (one frame, small), Heartbeat, FitRes,
//   EvaluateRes and Error; never an instruction, and never an
//   Error(Disconnected), which only the broker says about a client.
// - Routes by client id: a client's route is the connection it was last
//   heard on, so a client that reconnects or restarts is found again.
// - Liveness: any message from a client counts as a heartbeat. A client
//   silent past heartbeat_timeout, or one that says it is leaving
//   (Error(Leaving), sent as it stops), is reported to the server as an
//   Error(Disconnected) in its name. Every heartbeat_interval each client
//   connection gets a Heartbeat, so clients notice a lost broker.
// - One server: the first connection heard on `server` is the server; a
//   second one is refused while the first was heard within
//   heartbeat_timeout. Registrations wait until the server is there; a
//   server that connects (or comes back after heartbeat_timeout of silence)
//   is sent every live client's last Register, so it learns who is there.
// - Memory: per client id a route, its last Register (frame 0, at most
//   kMaxRegisterBytes) while it is alive, and a Shutdown the server sent
//   while it was away; at most max_routes ids. An id the server refuses
//   (Error(Refused)) is forgotten. Instructions are not held: the server
//   sends a client its instruction again when it registers again.
class Broker {
 public:
  static constexpr std::size_t kMaxRegisterBytes = 4096;

  Broker(Channel& clients, Channel& server, BrokerOptions options,
         const RuntimeClock& clock = RuntimeClock::steady());

  // Serves both channels until `stop` is set, then forwards what the server
  // still sent (its Shutdowns).
  void run(const std::atomic<bool>& stop);
  // One turn: a message from each channel if one comes within `wait`, then
  // the liveness check. run() repeats it; tests call it directly.
  void poll(std::chrono::milliseconds wait);

  // For tests and logs.
  std::size_t route_count() const { return routes_.size(); }
  std::size_t held_register_bytes() const;

 private:
  using TimePoint = RuntimeClock::time_point;

  struct Route {
    std::string peer;  // the client-side connection it was last heard on
    std::string key;   // the authenticated name it registered under
    TimePoint last_heard;
    bool alive = false;
    std::optional<Message> registration;  // frame 0 of its last Register, while alive
    std::optional<Message> parting;       // a Shutdown sent while it was away
  };

  void from_client(Message message, TimePoint now);
  void from_server(Message message, TimePoint now);
  void tick(TimePoint now);
  // Marks a live client lost and tells the server, Error(Disconnected) with `why`.
  void report_lost(const std::string& id, Route& route, const std::string& why);
  // A route for a new id, or nullptr when all max_routes are taken by live ids.
  Route* new_route(const std::string& id, const std::string& key);
  bool server_connected(TimePoint now) const;
  void to_server(const Message& message);
  void to_client(const std::string& peer, const Message& message);
  // An Error to a client connection, `about` the client id it concerns.
  void send_error(const std::string& peer, const std::string& about, wire::ErrorCode code,
                  const std::string& text);

  Channel& clients_;
  Channel& server_;
  BrokerOptions options_;
  const RuntimeClock& clock_;
  std::map<std::string, Route> routes_;  // by client id
  // When each connection was last heard under each key: a message from a
  // registered id on it keeps alive every id registered on that connection
  // with that key, so a host of thousands of clients heartbeats once, not
  // once per client. Entries older than heartbeat_timeout are dropped.
  std::map<std::pair<std::string, std::string>, TimePoint> connections_heard_;
  std::optional<std::string> server_peer_;
  TimePoint server_last_heard_{};
  TimePoint next_tick_{};
};

}  // namespace lorafed
