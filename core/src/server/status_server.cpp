#include "src/server/status_server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "lorafed/error.hpp"

namespace lorafed {

StatusServer::StatusServer(const StatusBoard& board, const std::string& listen)
    : server_(std::make_unique<httplib::Server>()) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw ConfigError("[status] listen = \"" + listen + "\": expected host:port");
  }
  const std::string host = listen.substr(0, colon);
  int port = -1;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    throw ConfigError("[status] listen = \"" + listen + "\": the port must be 0..65535");
  }

  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, with which a
  // second federation on the same port would share it silently.
  server_->set_socket_options([](socket_t socket) {
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  server_->set_read_timeout(kIdleTimeout);
  server_->set_write_timeout(kIdleTimeout);
  server_->set_keep_alive_timeout(kIdleTimeout.count());
  server_->set_keep_alive_max_count(kRequestsPerConnection);
  server_->Get("/status", [&board](const httplib::Request&, httplib::Response& response) {
    response.set_content(board.json().dump(2) + "\n", "application/json");
  });
  server_->Get("/metrics", [&board](const httplib::Request&, httplib::Response& response) {
    response.set_content(board.prometheus(), "text/plain; version=0.0.4");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("lorafed server: GET /status (JSON), GET /metrics (Prometheus)\n",
                         "text/plain");
  });

  port_ = port == 0 ? server_->bind_to_any_port(host) : port;
  if (port_ < 0 || (port != 0 && !server_->bind_to_port(host, port))) {
    throw ConfigError("[status] listen = \"" + listen + "\": cannot listen there (in use?)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before the loop runs would be lost and the destructor would wait
  // for ever: return once it serves.
  for (int waited_ms = 0; !server_->is_running() && waited_ms < 10000; ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  spdlog::info("status endpoint on http://{}:{}/status and /metrics", host, port_);
}

StatusServer::~StatusServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace lorafed
