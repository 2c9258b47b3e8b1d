#include "src/guarded_thread.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "src/stop_signal.hpp"

namespace lorafed {

GuardedThread::GuardedThread(std::string name, std::function<void()> body,
                             std::function<void()> on_failure)
    : name_(std::move(name)),
      thread_([this, body = std::move(body), on_failure = std::move(on_failure)] {
        try {
          body();
        } catch (...) {
          failure_ = std::current_exception();
          try {
            std::rethrow_exception(failure_);
          } catch (const std::exception& error) {
            spdlog::error("{} failed: {}", name_, error.what());
          } catch (...) {
            spdlog::error("{} failed (not a std::exception)", name_);
          }
          if (on_failure) on_failure();
        }
      }) {}

GuardedThread::~GuardedThread() {
  if (thread_.joinable()) thread_.join();
}

void GuardedThread::join() {
  if (thread_.joinable()) thread_.join();
  // join() orders the thread's writes before these reads.
  if (std::exception_ptr failure = std::exchange(failure_, nullptr)) {
    std::rethrow_exception(failure);
  }
}

void serve_beside_threads(const std::function<void()>& serve,
                          const std::function<void()>& stop_threads) {
  std::exception_ptr server_failure;
  try {
    serve();
  } catch (...) {
    server_failure = std::current_exception();
  }
  try {
    stop_threads();
  } catch (...) {
    if (server_failure) {
      try {
        std::rethrow_exception(server_failure);
      } catch (const Interrupted&) {
        // the thread's stop: its failure says why
      } catch (const std::exception& error) {
        spdlog::error("the server failed too: {}", error.what());
      } catch (...) {
        spdlog::error("the server failed too (not a std::exception)");
      }
    }
    throw;
  }
  if (server_failure) std::rethrow_exception(server_failure);
}

}  // namespace lorafed
