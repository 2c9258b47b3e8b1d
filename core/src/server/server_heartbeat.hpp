#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "src/server/server_link.hpp"

namespace lorafed {

// Keeps the server heard while it works: a thread that sends the broker the
// server's heartbeat whenever one is due. The server's own steps (evaluating
// the global model, aggregating, writing a checkpoint) can outlast the
// broker's heartbeat_timeout_s on a large model or a loaded machine, and a
// broker that hears nothing for that long takes the server for gone: it lets
// a second server in, and announces every client again when the first is
// heard from (docs/protocol.md, "Liveness").
class ServerHeartbeat {
 public:
  ServerHeartbeat(ServerLink& link, std::chrono::milliseconds interval);
  ~ServerHeartbeat();
  ServerHeartbeat(const ServerHeartbeat&) = delete;
  ServerHeartbeat& operator=(const ServerHeartbeat&) = delete;

 private:
  void run();

  ServerLink& link_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace lorafed
