#pragma once

#include <chrono>
#include <cstddef>
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
class LORAFED_API Transport {
 public:
  virtual ~Transport();
  virtual std::unique_ptr<Channel> bind(const std::string& endpoint) = 0;
  virtual std::unique_ptr<Channel> connect(const std::string& endpoint,
                                           const std::string& identity) = 0;
};

}  // namespace lorafed
