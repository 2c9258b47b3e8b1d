#pragma once

#include <exception>
#include <functional>
#include <string>
#include <thread>

namespace lorafed {

// A thread whose failure ends the run, not the process: an exception that
// leaves `body` is logged and kept, `on_failure` runs (it asks the rest of
// the process to stop, e.g. StopSignal::request; it must not throw), and
// join() hands the exception to the owner. A plain std::thread would call std::terminate.
class GuardedThread {
 public:
  // `name` says whose failure it was in the log ("the client host").
  GuardedThread(std::string name, std::function<void()> body, std::function<void()> on_failure);
  ~GuardedThread();  // joins; a failure not taken by join() is dropped (it was logged)
  GuardedThread(const GuardedThread&) = delete;
  GuardedThread& operator=(const GuardedThread&) = delete;

  // Waits for the thread to end; rethrows what ended it, if anything did.
  void join();

 private:
  std::string name_;
  std::exception_ptr failure_;
  std::thread thread_;  // last: starts once the rest is set
};

// Runs `serve` (a server's rounds) and then `stop_threads`, which stops and
// joins the GuardedThreads beside it and rethrows the failure of one. A
// thread that failed asked the server to stop, so its failure is the cause
// and is what this throws; the server's own failure then is logged unless
// it was only that stop (Interrupted). Otherwise rethrows what `serve` threw.
// A thread that fails after `serve` returned is thrown too: what the run
// wrote is whole, and the exit status still says something failed.
void serve_beside_threads(const std::function<void()>& serve,
                          const std::function<void()>& stop_threads);

}  // namespace lorafed
