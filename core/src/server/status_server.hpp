#pragma once

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
class StatusServer {
 public:
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
