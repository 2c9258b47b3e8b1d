#include "src/broker/broker.hpp"

#include <spdlog/spdlog.h>

#include <set>

namespace lorafed {
namespace {

using wire::BodyKind;

constexpr std::size_t kMaxClientIdBytes = 256;

bool is_instruction(BodyKind kind) {
  return kind == BodyKind::kFitIns || kind == BodyKind::kEvaluateIns || kind == BodyKind::kShutdown;
}

bool is_reply(BodyKind kind) {
  return kind == BodyKind::kFitRes || kind == BodyKind::kEvaluateRes || kind == BodyKind::kError;
}

double seconds(std::chrono::milliseconds duration) {
  return duration.count() / 1000.0;
}

}  // namespace

Broker::Broker(Channel& clients, Channel& server, BrokerOptions options)
    : clients_(clients), server_(server), options_(options) {}

void Broker::run(const std::atomic<bool>& stop) {
  // Both channels are polled in turn; a waiting message is taken at once,
  // so a busy channel costs at most one millisecond of the other's latency.
  constexpr auto kPoll = std::chrono::milliseconds(1);
  while (!stop) {
    if (auto message = clients_.receive(kPoll)) from_client(std::move(*message), Clock::now());
    if (auto message = server_.receive(kPoll)) from_server(std::move(*message), Clock::now());
    tick(Clock::now());
  }
  // What the server sent before stopping us (its Shutdowns) still goes out.
  while (auto message = server_.receive(std::chrono::milliseconds(20))) {
    from_server(std::move(*message), Clock::now());
  }
}

void Broker::from_client(Message message, Clock::time_point now) {
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
  Route& route = routes_[id];
  const bool was_alive = route.alive;
  route.peer = message.peer;
  route.last_heard = now;
  route.alive = true;

  if (header.kind == BodyKind::kRegister) {
    spdlog::info("broker: {} registered{}", id, route.registration ? " again" : "");
    route.registration = message;
    to_server(message);
    if (route.held && (!route.held_sent || now - *route.held_sent >= options_.heartbeat_interval)) {
      spdlog::info("broker: delivering the held {} of round {} to {}",
                   wire::body_name(route.held_kind), route.held_round, id);
      to_client(route.peer, *route.held);
      route.held_sent = now;
    }
    return;
  }
  if (!was_alive) {
    // The server was told this client is gone; it comes back by registering.
    spdlog::info("broker: {} is back; asking it to register again", id);
    send_error(route.peer, id, wire::ErrorCode::kNotRegistered,
               "the broker lost contact with you: register again");
  }
  if (header.kind == BodyKind::kHeartbeat) return;
  if (is_reply(header.kind) && route.held && header.round == route.held_round) route.held.reset();
  to_server(message);
}

void Broker::from_server(Message message, Clock::time_point now) {
  server_peer_ = message.peer;
  const bool reconnected =
      !server_last_heard_ || now - *server_last_heard_ > options_.heartbeat_timeout;
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
  if (id.empty() || id == wire::kServerId || id.size() > kMaxClientIdBytes) {
    spdlog::warn("broker: the server sent {} to '{}', which is not a client id",
                 wire::body_name(header.kind), id);
    return;
  }
  Route& route = routes_[id];
  if (is_instruction(header.kind)) {
    route.held = message;
    route.held_round = header.round;
    route.held_kind = header.kind;
    route.held_sent.reset();
  }
  if (route.alive) {
    to_client(route.peer, message);
    if (is_instruction(header.kind)) route.held_sent = now;
  } else if (is_instruction(header.kind)) {
    spdlog::info("broker: holding {} of round {} for {} until it registers",
                 wire::body_name(header.kind), header.round, id);
  }
}

void Broker::tick(Clock::time_point now) {
  if (now < next_tick_) return;
  next_tick_ = now + options_.heartbeat_interval;
  std::set<std::string> live_peers;
  for (auto& [id, route] : routes_) {
    if (!route.alive) continue;
    if (now - route.last_heard > options_.heartbeat_timeout) {
      route.alive = false;
      // The server fails it for the round it was in; a stale instruction
      // would only delay it when it comes back. A Shutdown stays.
      if (route.held && route.held_kind != BodyKind::kShutdown) route.held.reset();
      spdlog::warn("broker: {} lost: nothing heard for {:g}s (heartbeat_timeout_s)", id,
                   seconds(options_.heartbeat_timeout));
      wire::Envelope notice{0,
                            id,
                            wire::kServerId,
                            wire::ErrorBody{wire::ErrorCode::kDisconnected,
                                            "no heartbeat within heartbeat_timeout_s"},
                            {}};
      to_server(wire::encode(notice));
      continue;
    }
    if (live_peers.insert(route.peer).second) {
      to_client(route.peer,
                wire::encode(wire::Envelope{0, wire::kServerId, id, wire::HeartbeatBody{}, {}}));
    }
  }
}

void Broker::to_server(const Message& message) {
  try {
    server_.send(Message{server_peer_, message.frames});
  } catch (const std::exception& error) {
    spdlog::warn("broker: could not forward to the server: {}", error.what());
  }
}

void Broker::to_client(const std::string& peer, const Message& message) {
  try {
    clients_.send(Message{peer, message.frames});
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
