#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lorafed/export.hpp"

namespace lorafed {

// Bytes that stay valid while `owner` lives. Frames are passed by sharing
// ownership, never by copying, so a tensor's storage can travel as a frame.
struct LORAFED_API Frame {
  const std::byte* data = nullptr;
  std::size_t size = 0;
  std::shared_ptr<const void> owner;

  std::span<const std::byte> bytes() const { return {data, size}; }
  static Frame copy_of(std::span<const std::byte> bytes);
  static Frame adopt(std::vector<std::byte> bytes);
};

// A multi-frame message. On a bound channel `peer` names the sender of a
// received message and the recipient of a sent one; a connected channel
// ignores it (its only peer is the one it connected to).
struct Message {
  std::string peer;
  std::vector<Frame> frames;
  // On a received message of a bound channel: the name under which the
  // transport authenticated the sender's connection (the zmq transport's
  // CURVE key name), empty when the transport authenticates no one. A
  // broker binds client ids to it (docs/deployment.md, "Threat model").
  std::string authenticated_as;
};

// Who may connect to a bound endpoint: the federation's clients, or its one
// server (the server-facing endpoint of a separate broker). A transport that
// authenticates admits only the keys configured for that side.
enum class Peers : std::uint8_t { kClients, kServer };

// The processes a launcher started together (`mpirun -n K`), of which this
// one is `index` (0-based). `lorafed simulate` runs the server in process 0
// and deals the virtual clients to the others.
struct ProcessGroup {
  int index = 0;
  int size = 1;
};

// One end of a connection. Used by one thread at a time.
class LORAFED_API Channel {
 public:
  virtual ~Channel();
  virtual void send(Message message) = 0;
  // Waits up to `timeout` for a message; nullopt when none arrived.
  virtual std::optional<Message> receive(std::chrono::milliseconds timeout) = 0;
  virtual void close() = 0;
};

// Makes channels: the server binds one endpoint; each client host connects
// to it under an identity that is unique among the endpoint's peers.
// Channels must not let an exception of the plugin's own types escape: the
// runtime may unload the plugin before an exception is handled, so throw
// lorafed::Error (or a type of the SDK's), never a library's own.
class LORAFED_API Transport {
 public:
  virtual ~Transport();
  virtual std::unique_ptr<Channel> bind(const std::string& endpoint, Peers peers) = 0;
  std::unique_ptr<Channel> bind(const std::string& endpoint) {
    return bind(endpoint, Peers::kClients);
  }
  virtual std::unique_ptr<Channel> connect(const std::string& endpoint,
                                           const std::string& identity) = 0;
  // False when channels reach only this process (inproc): such a transport
  // serves `lorafed simulate`, not a server and clients in other processes.
  virtual bool crosses_processes() const = 0;
  // The group when this transport connects processes that a launcher
  // started together, which then exist only together: no `lorafed server`,
  // `client` or `broker` over it. The default (nullopt) is a transport
  // whose processes start on their own (zmq) or that stays in one (inproc).
  virtual std::optional<ProcessGroup> process_group();
};

}  // namespace lorafed
