#pragma once

#include <atomic>

#include "lorafed/error.hpp"

namespace lorafed {

// A run stopped by SIGINT or SIGTERM: what it measured is on disk, and a
// server continues from its checkpoint with --resume.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// SIGINT and SIGTERM as a flag. While a StopSignal lives, either signal sets
// flag() instead of ending the process, so a server, broker or client leaves
// its loop, keeps what it wrote whole, and exits (docs/deployment.md,
// "Stopping"). A second signal ends the process at once, as without it.
// One at a time per process; the handlers before it come back when it goes.
class StopSignal {
 public:
  // Exit code of a process stopped this way (the shell's 128 + SIGINT).
  static constexpr int kExitCode = 130;

  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  const std::atomic<bool>& flag() const;
  bool requested() const { return flag().load(); }
  // Sets flag() as a signal would, from a thread of this process that cannot
  // go on (a GuardedThread's failure). It counts as no signal: the first
  // SIGINT or SIGTERM after it is still only a request to stop.
  void request() const;
  // The signal received ("SIGINT", "SIGTERM"), or "" while none was.
  const char* name() const;
};

}  // namespace lorafed
