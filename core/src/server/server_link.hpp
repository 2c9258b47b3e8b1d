#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "lorafed/transport.hpp"
#include "src/runtime_clock.hpp"
#include "src/server/client_roster.hpp"
#include "src/wire/codec.hpp"

namespace lorafed {

// The server's connection to the broker: encodes what it sends, decodes and
// checks what it receives, and keeps the roster up to date on the way
// (registrations are admitted or refused, the broker's reports of lost
// clients mark them lost). Sends the broker a heartbeat when one is due.
// Two threads may use it: the server's, and a ServerHeartbeat's, which only
// calls heartbeat_if_due (a lock keeps the channel to one thread at a time).
class ServerLink {
 public:
  struct Options {
    wire::EncodeOptions encode;
    wire::DecodeLimits limits;
    std::chrono::milliseconds heartbeat_interval{1000};
  };
  struct Received {
    wire::Envelope envelope;
    std::uint64_t bytes = 0;
  };

  // `stop`, when given, ends every wait early once set (SIGINT, SIGTERM).
  ServerLink(Channel& channel, ClientRoster& roster, Options options,
             const RuntimeClock& clock = RuntimeClock::steady(),
             const std::atomic<bool>* stop = nullptr);

  // Receives one message until `deadline`. Registrations and reports of lost
  // clients are handled here and not returned; undecodable messages are
  // answered with an Error and dropped.
  std::optional<Received> receive_until(RuntimeClock::time_point deadline);
  // Sends; returns the bytes sent, 0 when the transport could not take it
  // (the broker is unreachable: logged, and the round goes on without it).
  std::uint64_t send(const wire::Envelope& envelope);
  void send_error(const std::string& client_id, wire::ErrorCode code, const std::string& text);
  // Tells the broker the server is there, if a heartbeat is due.
  void heartbeat_if_due();

  bool stop_requested() const { return stop_ != nullptr && stop_->load(); }
  const RuntimeClock& clock() const { return clock_; }

 private:
  Channel& channel_;
  ClientRoster& roster_;
  Options options_;
  const RuntimeClock& clock_;
  const std::atomic<bool>* stop_;
  std::mutex channel_mutex_;    // around every use of channel_
  std::mutex heartbeat_mutex_;  // around next_heartbeat_, taken before channel_mutex_
  RuntimeClock::time_point next_heartbeat_{};
};

}  // namespace lorafed
