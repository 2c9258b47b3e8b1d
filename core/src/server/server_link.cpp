#include "src/server/server_link.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "lorafed/error.hpp"

namespace lorafed {

ServerLink::ServerLink(Channel& channel, ClientRoster& roster, Options options,
                       const RuntimeClock& clock, const std::atomic<bool>* stop)
    : channel_(channel), roster_(roster), options_(options), clock_(clock), stop_(stop) {}

void ServerLink::heartbeat_if_due() {
  const std::lock_guard lock(heartbeat_mutex_);
  const auto now = clock_.now();
  if (now < next_heartbeat_) return;
  send(wire::Envelope{0, wire::kServerId, wire::kServerId, wire::HeartbeatBody{}, {}});
  next_heartbeat_ = now + options_.heartbeat_interval;
}

std::optional<ServerLink::Received> ServerLink::receive_until(RuntimeClock::time_point deadline) {
  heartbeat_if_due();
  const auto now = clock_.now();
  if (now >= deadline || stop_requested()) return std::nullopt;
  // At most 200 ms a wait, and never past the next heartbeat: the stop flag
  // is looked at between, and the channel is free for a heartbeat when due.
  RuntimeClock::time_point next_heartbeat;
  {
    const std::lock_guard lock(heartbeat_mutex_);
    next_heartbeat = next_heartbeat_;
  }
  const auto wait = std::max<RuntimeClock::duration>(
      std::min({deadline - now, RuntimeClock::duration(std::chrono::milliseconds(200)),
                next_heartbeat - now}),
      RuntimeClock::duration::zero());
  std::optional<Message> message;
  {
    const std::lock_guard lock(channel_mutex_);
    message = channel_.receive(std::chrono::duration_cast<std::chrono::milliseconds>(wait) +
                               std::chrono::milliseconds(1));
  }
  if (!message) return std::nullopt;
  std::string sender;
  try {
    sender = wire::decode_header(*message, options_.limits).sender;
    wire::Envelope envelope = wire::decode(*message, options_.limits);
    if (const auto* registration = std::get_if<wire::RegisterBody>(&envelope.body)) {
      if (const auto refusal = roster_.admit(sender, *registration)) {
        spdlog::warn("refusing registration of '{}': {}", sender, *refusal);
        send_error(sender, wire::ErrorCode::kRefused, *refusal);
      }
      return std::nullopt;
    }
    if (const auto* error = std::get_if<wire::ErrorBody>(&envelope.body);
        error != nullptr && sender == wire::kServerId && error->code == wire::ErrorCode::kRefused) {
      throw Error("the broker refuses this server: " + error->text +
                  " (is another server connected to it?)");
    }
    if (const auto* error = std::get_if<wire::ErrorBody>(&envelope.body);
        error != nullptr && error->code == wire::ErrorCode::kDisconnected) {
      // Only the broker says this (it drops a client's claim of it).
      if (roster_.alive(sender)) {
        spdlog::warn("{} is lost ({})", sender, error->text);
        roster_.mark_lost(sender);
      }
      return std::nullopt;
    }
    return Received{std::move(envelope), wire::message_bytes(*message)};
  } catch (const wire::DecodeError& error) {
    spdlog::warn("dropping an undecodable message from '{}' ({} bytes): {}", sender,
                 wire::message_bytes(*message), error.what());
    if (!sender.empty()) send_error(sender, error.code(), error.what());
  }
  return std::nullopt;
}

std::uint64_t ServerLink::send(const wire::Envelope& envelope) {
  Message message = wire::encode(envelope, options_.encode);
  const std::uint64_t bytes = wire::message_bytes(message);
  try {
    const std::lock_guard lock(channel_mutex_);
    channel_.send(std::move(message));
  } catch (const std::exception& error) {
    spdlog::warn("could not send {} to {}: {}", wire::body_name(envelope.body), envelope.recipient,
                 error.what());
    return 0;
  }
  return bytes;
}

void ServerLink::send_error(const std::string& client_id, wire::ErrorCode code,
                            const std::string& text) {
  send(wire::Envelope{0, wire::kServerId, client_id, wire::ErrorBody{code, text}, {}});
}

}  // namespace lorafed
