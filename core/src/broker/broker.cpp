#include "src/broker/broker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "src/wire/codec.hpp"

namespace lorafed {
namespace {

using wire::BodyKind;

constexpr std::size_t kMaxClientIdBytes = 256;

// What a client may send the broker; anything else is dropped.
bool client_may_send(BodyKind kind) {
  return kind == BodyKind::kRegister || kind == BodyKind::kHeartbeat || kind == BodyKind::kFitRes ||
         kind == BodyKind::kEvaluateRes || kind == BodyKind::kError;
}

double seconds(std::chrono::milliseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

std::string describe_key(const std::string& key) {
  return key.empty() ? "no key" : "key '" + key + "'";
}

}  // namespace

Broker::Broker(Channel& clients, Channel& server, BrokerOptions options, const RuntimeClock& clock)
    : clients_(clients), server_(server), options_(options), clock_(clock) {}

void Broker::run(const std::atomic<bool>& stop) {
  // Both channels are polled in turn; a waiting message is taken at once,
  // so a busy channel costs at most one millisecond of the other's latency.
  while (!stop) poll(std::chrono::milliseconds(1));
  // What the server sent before stopping us (its Shutdowns) still goes out.
  while (auto message = server_.receive(std::chrono::milliseconds(20))) {
    from_server(std::move(*message), clock_.now());
  }
}

void Broker::poll(std::chrono::milliseconds wait) {
  // What is waiting is taken without waiting, up to a batch from each side
  // in turn: thousands of clients heartbeat every interval, and one message
  // per wait fell behind them. Only an idle broker waits.
  constexpr int kBatch = 256;
  bool busy = false;
  for (int taken = 0; taken < kBatch; ++taken) {
    auto message = clients_.receive(std::chrono::milliseconds(0));
    if (!message) break;
    from_client(std::move(*message), clock_.now());
    busy = true;
  }
  for (int taken = 0; taken < kBatch; ++taken) {
    auto message = server_.receive(std::chrono::milliseconds(0));
    if (!message) break;
    from_server(std::move(*message), clock_.now());
    busy = true;
  }
  if (!busy) {
    if (auto message = clients_.receive(wait)) from_client(std::move(*message), clock_.now());
    if (auto message = server_.receive(wait)) from_server(std::move(*message), clock_.now());
  }
  tick(clock_.now());
}

std::size_t Broker::held_register_bytes() const {
  std::size_t bytes = 0;
  for (const auto& [id, route] : routes_) {
    if (route.registration) bytes += wire::message_bytes(*route.registration);
  }
  return bytes;
}

bool Broker::server_connected(TimePoint now) const {
  return server_peer_ && now - server_last_heard_ <= options_.heartbeat_timeout;
}

Broker::Route* Broker::new_route(const std::string& id, const std::string& key) {
  if (routes_.size() >= options_.max_routes) {
    auto oldest = routes_.end();
    for (auto route = routes_.begin(); route != routes_.end(); ++route) {
      if (route->second.alive) continue;
      if (oldest == routes_.end() || route->second.last_heard < oldest->second.last_heard) {
        oldest = route;
      }
    }
    if (oldest == routes_.end()) return nullptr;
    spdlog::info("broker: forgetting {} (lost) to make room for {}", oldest->first, id);
    routes_.erase(oldest);
  }
  Route& route = routes_[id];
  route.key = key;
  return &route;
}

void Broker::from_client(Message message, TimePoint now) {
  wire::Header header;
  try {
    header = wire::decode_header(message, options_.limits);
  } catch (const wire::DecodeError& error) {
    spdlog::warn("broker: dropping an undecodable message from connection '{}' ({} bytes): {}",
                 message.peer, wire::message_bytes(message), error.what());
    send_error(message.peer, "", error.code(), error.what());
    return;
  }
  const std::string& id = header.sender;
  if (id.empty() || id == wire::kServerId || id.size() > kMaxClientIdBytes) {
    spdlog::warn("broker: dropping {} from connection '{}': '{}' is not a client id",
                 wire::body_name(header.kind), message.peer, id);
    send_error(message.peer, id, wire::ErrorCode::kNotRegistered,
               "a client id must be 1 to 256 bytes and not 'server'");
    return;
  }
  if (!client_may_send(header.kind) ||
      (header.kind == BodyKind::kError && header.error_code == wire::ErrorCode::kDisconnected)) {
    // Liveness is the broker's judgement, never a client's claim.
    spdlog::warn("broker: dropping {}{} from {} ({}): a client may not send it",
                 wire::body_name(header.kind),
                 header.kind == BodyKind::kError ? "(Disconnected)" : "", id,
                 describe_key(message.authenticated_as));
    send_error(message.peer, id, wire::ErrorCode::kUnexpected,
               std::string("a client may not send ") + wire::body_name(header.kind));
    return;
  }
  const bool registering = header.kind == BodyKind::kRegister;
  if (registering && (message.frames.size() != 1 || message.frames[0].size > kMaxRegisterBytes)) {
    spdlog::warn(
        "broker: dropping a Register from {}: {} frame(s), {} bytes (at most one frame "
        "of {} bytes)",
        id, message.frames.size(), wire::message_bytes(message), kMaxRegisterBytes);
    send_error(
        message.peer, id, wire::ErrorCode::kTooLarge,
        "a Register is one frame of at most " + std::to_string(kMaxRegisterBytes) + " bytes");
    return;
  }

  auto found = routes_.find(id);
  Route* route = found == routes_.end() ? nullptr : &found->second;
  if (route == nullptr) {
    if (!registering) {
      send_error(message.peer, id, wire::ErrorCode::kNotRegistered, "register first");
      return;
    }
    route = new_route(id, message.authenticated_as);
    if (route == nullptr) {
      spdlog::warn("broker: refusing {}: all {} routes are taken by live clients", id,
                   options_.max_routes);
      send_error(message.peer, id, wire::ErrorCode::kRefused,
                 "the broker serves no more client ids");
      return;
    }
  } else if (route->key != message.authenticated_as) {
    spdlog::warn("broker: dropping {} that claims to be {} from {}: {} registered with {}",
                 wire::body_name(header.kind), id, describe_key(message.authenticated_as), id,
                 describe_key(route->key));
    return;
  }

  if (header.kind == BodyKind::kError && header.error_code == wire::ErrorCode::kLeaving) {
    // It stops (SIGINT, SIGTERM): the server fails it now, not after heartbeat_timeout_s.
    if (route->alive) {
      spdlog::info("broker: {} left (it stopped)", id);
      report_lost(id, *route, "the client stopped");
    }
    return;
  }

  const bool was_alive = route->alive;
  route->peer = message.peer;
  route->last_heard = now;
  route->alive = true;
  connections_heard_[{message.peer, message.authenticated_as}] = now;

  if (registering) {
    spdlog::info("broker: {} registered{}", id, route->registration ? " again" : "");
    route->registration = Message{message.peer, {message.frames[0]}, message.authenticated_as};
    // A server not heard from yet gets it with the others when it connects.
    if (server_peer_) to_server(*route->registration);
    if (route->parting) {
      to_client(route->peer, *route->parting);
      route->parting.reset();
    }
    return;
  }
  if (!was_alive) {
    // The server was told this client is gone; it comes back by registering.
    spdlog::info("broker: {} is back; asking it to register again", id);
    send_error(route->peer, id, wire::ErrorCode::kNotRegistered,
               "the broker lost contact with you: register again");
  }
  if (header.kind == BodyKind::kHeartbeat) return;
  to_server(message);
}

void Broker::from_server(Message message, TimePoint now) {
  if (server_peer_ && message.peer != *server_peer_ && server_connected(now)) {
    spdlog::warn(
        "broker: refusing a second server on connection '{}' ({}): the server on '{}' "
        "was heard {:.1f}s ago",
        message.peer, describe_key(message.authenticated_as), *server_peer_,
        std::chrono::duration<double>(now - server_last_heard_).count());
    wire::Envelope refusal{
        0,
        wire::kServerId,
        wire::kServerId,
        wire::ErrorBody{wire::ErrorCode::kRefused, "this broker already serves a server"},
        {}};
    Message reply = wire::encode(refusal);
    reply.peer = message.peer;
    try {
      server_.send(std::move(reply));
    } catch (const std::exception& error) {
      spdlog::warn("broker: could not refuse '{}': {}", message.peer, error.what());
    }
    return;
  }
  const bool reconnected = !server_connected(now) || message.peer != *server_peer_;
  server_peer_ = message.peer;
  server_last_heard_ = now;
  if (reconnected) {
    std::size_t replayed = 0;
    for (const auto& [id, route] : routes_) {
      if (route.alive && route.registration) {
        to_server(*route.registration);
        ++replayed;
      }
    }
    spdlog::info("broker: the server is connected; {} live client(s) announced", replayed);
  }
  wire::Header header;
  try {
    header = wire::decode_header(message, options_.limits);
  } catch (const wire::DecodeError& error) {
    spdlog::error("broker: dropping an undecodable message from the server: {}", error.what());
    return;
  }
  if (header.kind == BodyKind::kHeartbeat) return;
  const std::string& id = header.recipient;
  const auto found = routes_.find(id);
  if (found == routes_.end()) {
    spdlog::debug("broker: no route to '{}'; {} dropped", id, wire::body_name(header.kind));
    return;
  }
  Route& route = found->second;
  if (route.alive) {
    to_client(route.peer, message);
  } else if (header.kind == BodyKind::kShutdown) {
    route.parting = message;  // it learns when it comes back
  } else {
    spdlog::debug("broker: {} is lost; {} of round {} dropped", id, wire::body_name(header.kind),
                  header.round);
  }
  if (header.kind == BodyKind::kError && header.error_code == wire::ErrorCode::kRefused) {
    // Refused for good: its route and key binding go.
    routes_.erase(found);
  }
}

void Broker::tick(TimePoint now) {
  if (now < next_tick_) return;
  next_tick_ = now + options_.heartbeat_interval;
  std::erase_if(connections_heard_, [&](const auto& connection) {
    return now - connection.second > options_.heartbeat_timeout;
  });
  std::set<std::string> live_peers;
  for (auto& [id, route] : routes_) {
    if (!route.alive) continue;
    TimePoint last_heard = route.last_heard;
    if (const auto connection = connections_heard_.find({route.peer, route.key});
        connection != connections_heard_.end()) {
      last_heard = std::max(last_heard, connection->second);
    }
    if (now - last_heard > options_.heartbeat_timeout) {
      spdlog::warn("broker: {} lost: nothing heard for {:g}s (heartbeat_timeout_s)", id,
                   seconds(options_.heartbeat_timeout));
      report_lost(id, route, "no heartbeat within heartbeat_timeout_s");
      continue;
    }
    if (live_peers.insert(route.peer).second) {
      to_client(route.peer,
                wire::encode(wire::Envelope{0, wire::kServerId, id, wire::HeartbeatBody{}, {}}));
    }
  }
}

void Broker::report_lost(const std::string& id, Route& route, const std::string& why) {
  route.alive = false;
  route.registration.reset();  // it registers again when it comes back
  if (server_peer_) {
    to_server(wire::encode(wire::Envelope{
        0, id, wire::kServerId, wire::ErrorBody{wire::ErrorCode::kDisconnected, why}, {}}));
  }
}

void Broker::to_server(const Message& message) {
  if (!server_peer_) return;
  try {
    server_.send(Message{*server_peer_, message.frames, {}});
  } catch (const std::exception& error) {
    spdlog::warn("broker: could not forward to the server: {}", error.what());
  }
}

void Broker::to_client(const std::string& peer, const Message& message) {
  try {
    clients_.send(Message{peer, message.frames, {}});
  } catch (const std::exception& error) {
    spdlog::warn("broker: could not send to connection '{}': {}", peer, error.what());
  }
}

void Broker::send_error(const std::string& peer, const std::string& about, wire::ErrorCode code,
                        const std::string& text) {
  wire::Envelope envelope{0, wire::kServerId, about, wire::ErrorBody{code, text}, {}};
  Message message = wire::encode(envelope);
  message.peer = peer;
  try {
    clients_.send(std::move(message));
  } catch (const std::exception& error) {
    spdlog::warn("broker: could not send an error to '{}': {}", peer, error.what());
  }
}

}  // namespace lorafed
