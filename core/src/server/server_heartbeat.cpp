#include "src/server/server_heartbeat.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace lorafed {

ServerHeartbeat::ServerHeartbeat(ServerLink& link, std::chrono::milliseconds interval)
    : link_(link), interval_(interval), thread_([this] { run(); }) {}

ServerHeartbeat::~ServerHeartbeat() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void ServerHeartbeat::run() {
  // Looking twice an interval, a heartbeat goes out at most 1.5 intervals
  // after the last one, inside heartbeat_timeout_s (at least 2 intervals).
  const auto look_every = std::max(interval_ / 2, std::chrono::milliseconds(1));
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, look_every, [this] { return stopping_; })) {
    lock.unlock();
    try {
      link_.heartbeat_if_due();
    } catch (const std::exception& error) {
      // Not fatal: the server's own thread still sends when it next receives.
      spdlog::warn("server heartbeat: {}", error.what());
    }
    lock.lock();
  }
}

}  // namespace lorafed
