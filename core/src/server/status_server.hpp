#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "src/server/status_board.hpp"

namespace httplib {
class Server;
}

namespace lorafed {

// The optional HTTP status endpoint (cpp-httplib): GET /status (JSON) and
// GET /metrics (Prometheus text) from a StatusBoard, served on its own
// threads until destroyed.
//
// httplib serves each connection on one pool thread for as long as the
// connection lasts, so a peer that opens connections and sends nothing, or
// half a request, holds threads: the timeouts below bound how long.
class StatusServer {
 public:
  // Connections served at once (httplib's default is max(8, cores − 1)).
  static constexpr std::size_t kThreads = 16;
  // A connection is dropped after this long without a byte of the request it
  // is sending, without accepting a byte of the response, or idle between
  // keep-alive requests.
  static constexpr std::chrono::seconds kIdleTimeout{2};
  // Requests served on one keep-alive connection before it is closed.
  static constexpr std::size_t kRequestsPerConnection = 5;

  // `listen` is "host:port"; port 0 picks a free one (see port()). Throws
  // ConfigError when it cannot listen there.
  StatusServer(const StatusBoard& board, const std::string& listen);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace lorafed
