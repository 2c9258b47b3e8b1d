#pragma once

// A client written by hand over a bare DEALER socket: sends whatever bytes
// it is told to, and reads what comes back. What the tests use to play an
// attacker or a broken peer.
#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "src/wire/codec.hpp"

namespace lorafed::test {

// A CURVE key pair as `lorafed keygen` writes it (Z85 strings).
struct HandKeys {
  std::string public_key;
  std::string secret_key;
  std::string server_public_key;  // the broker's
};

class HandClient {
 public:
  // With `heartbeat_as`, next() sends a Heartbeat in that client's name
  // every 300 ms while it waits, as a real client's heartbeat thread does:
  // the broker declares a client that is silent for heartbeat_timeout_s lost
  // and drops what the server sends it, a refusal included.
  HandClient(const std::string& endpoint, const std::string& identity,
             std::string heartbeat_as = "", const std::optional<HandKeys>& keys = std::nullopt)
      : socket_(context_, zmq::socket_type::dealer), heartbeat_as_(std::move(heartbeat_as)) {
    socket_.set(zmq::sockopt::routing_id, identity);
    socket_.set(zmq::sockopt::linger, 0);
    if (keys) {
      socket_.set(zmq::sockopt::curve_serverkey, keys->server_public_key);
      socket_.set(zmq::sockopt::curve_publickey, keys->public_key);
      socket_.set(zmq::sockopt::curve_secretkey, keys->secret_key);
    }
    socket_.connect(endpoint);
  }
  void send_frames(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void send(const wire::Envelope& envelope) {
    std::vector<std::string> frames;
    for (const Frame& frame : wire::encode(envelope).frames) {
      frames.emplace_back(reinterpret_cast<const char*>(frame.data), frame.size);
    }
    send_frames(frames);
  }
  std::optional<wire::Envelope> receive(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    Message message;
    do {
      zmq::message_t part;
      (void)socket_.recv(part);
      message.frames.push_back(
          Frame::copy_of({static_cast<const std::byte*>(part.data()), part.size()}));
    } while (socket_.get(zmq::sockopt::rcvmore));
    return wire::decode(message);
  }
  // The next message that is not a Heartbeat.
  std::optional<wire::Envelope> next(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto now = std::chrono::steady_clock::now();
      if (!heartbeat_as_.empty() && now - last_heartbeat_ >= std::chrono::milliseconds(300)) {
        send(wire::Envelope{0, heartbeat_as_, wire::kServerId, wire::HeartbeatBody{}, {}});
        last_heartbeat_ = now;
      }
      auto envelope = receive(std::chrono::milliseconds(100));
      if (envelope && !std::holds_alternative<wire::HeartbeatBody>(envelope->body)) return envelope;
    }
    return std::nullopt;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string heartbeat_as_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
};

}  // namespace lorafed::test
