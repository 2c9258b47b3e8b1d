#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lorafed/strategy.hpp"
#include "src/server/client_roster.hpp"
#include "src/server/server_link.hpp"

namespace lorafed {

// One round's instructions and their replies (docs/architecture.md, "One
// round", steps 3–5). Sends each instruction, then waits for one reply of
// the wanted kind from each instructed client until all answered, were
// reported lost, or the deadline passed. A reply for another round, or from
// a client that was not asked, is discarded.
//
// Redelivery has this one home: a client that registers again while its
// instruction is open (it restarted, or the broker did and lost what was in
// flight) is sent the same instruction again, at most once per
// `resend_interval`; the client answers a repeated instruction with the
// reply it kept instead of training twice (ClientHost).
class RoundCollector {
 public:
  struct Reply {
    wire::Envelope envelope;
    std::uint64_t bytes = 0;
    double seconds = 0;  // since the instructions went out
  };
  struct Outcome {
    std::map<std::string, Reply> replies;  // by client id
    std::vector<Failure> failures;
    std::map<std::string, std::uint64_t> bytes_down;  // by client id
  };

  RoundCollector(ServerLink& link, ClientRoster& roster, std::chrono::milliseconds resend_interval,
                 double heartbeat_timeout_s);

  // Called with each reply of the wanted kind as it arrives, while other
  // clients still work, before the reply goes into Outcome::replies; it may
  // take the reply's tensors.
  using ReplyHandler = std::function<void(const std::string& client_id, Reply& reply)>;

  // `instructions` by client id; `wanted` the reply kind (FitRes or
  // EvaluateRes); the round closes `timeout` after the instructions went out.
  Outcome run(std::uint32_t round, const std::map<std::string, wire::Envelope>& instructions,
              wire::BodyKind wanted, std::chrono::milliseconds timeout,
              const ReplyHandler& arrived = {});

 private:
  ServerLink& link_;
  ClientRoster& roster_;
  std::chrono::milliseconds resend_interval_;
  double heartbeat_timeout_s_;
};

}  // namespace lorafed
