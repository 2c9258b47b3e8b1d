#pragma once

// In-memory stand-ins for the runtime's unit tests: a clock the test moves,
// and a channel the test feeds and reads, which moves that clock by the
// timeout of a receive that finds nothing (so waiting costs no real time).
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "lorafed/transport.hpp"
#include "src/runtime_clock.hpp"
#include "src/wire/codec.hpp"

namespace lorafed::test {

class ManualClock final : public RuntimeClock {
 public:
  time_point now() const override { return now_; }
  void advance(duration by) { now_ += by; }

 private:
  time_point now_ = time_point{} + std::chrono::hours(1);
};

class FakeChannel final : public Channel {
 public:
  explicit FakeChannel(ManualClock& clock) : clock_(clock) {}

  void send(Message message) override { sent_.push_back(std::move(message)); }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    if (inbox_.empty()) {
      clock_.advance(timeout);
      return std::nullopt;
    }
    Message message = std::move(inbox_.front());
    inbox_.pop_front();
    return message;
  }
  void close() override {}

  // What arrives next, from connection `peer` authenticated as `key`.
  void push(const wire::Envelope& envelope, const std::string& peer = "",
            const std::string& key = "") {
    Message message = wire::encode(envelope);
    message.peer = peer;
    message.authenticated_as = key;
    inbox_.push_back(std::move(message));
  }
  void push_raw(Message message) { inbox_.push_back(std::move(message)); }
  bool inbox_empty() const { return inbox_.empty(); }

  // Everything sent since the last call, decoded, with the connection it went to.
  struct Sent {
    std::string peer;
    wire::Envelope envelope;
  };
  std::vector<Sent> take_sent() {
    std::vector<Sent> result;
    for (Message& message : sent_) result.push_back({message.peer, wire::decode(message)});
    sent_.clear();
    return result;
  }

 private:
  ManualClock& clock_;
  std::deque<Message> inbox_;
  std::vector<Message> sent_;
};

inline wire::Envelope from_client(const std::string& id, wire::Body body, std::uint32_t round = 0) {
  return wire::Envelope{round, id, wire::kServerId, std::move(body), {}};
}
inline wire::Envelope to_client(const std::string& id, wire::Body body, std::uint32_t round = 0) {
  return wire::Envelope{round, wire::kServerId, id, std::move(body), {}};
}

}  // namespace lorafed::test
