// A thread that fails ends the run, not the process: its exception is kept
// for the owner, and it asks the rest of the process to stop.
#include <catch2/catch.hpp>

#include <atomic>

#include "lorafed/error.hpp"
#include "src/guarded_thread.hpp"
#include "src/stop_signal.hpp"

using namespace lorafed;

TEST_CASE("guarded thread: a failure is kept for the owner and stops the run", "[threads]") {
  const StopSignal stop;
  GuardedThread thread(
      "the test's thread", [] { throw Error("the channel is gone"); }, [&stop] { stop.request(); });
  CHECK_THROWS_MATCHES(thread.join(), Error, Catch::Message("the channel is gone"));
  CHECK(stop.requested());
  CHECK(std::string(stop.name()).empty());  // no signal came
  CHECK_NOTHROW(thread.join());             // handed over once
}

TEST_CASE("guarded thread: what is not a std::exception is kept too", "[threads]") {
  std::atomic<int> failures{0};
  GuardedThread thread(
      "the test's thread", [] { throw 42; }, [&failures] { ++failures; });
  CHECK_THROWS_AS(thread.join(), int);
  CHECK(failures == 1);
}

TEST_CASE("guarded thread: a thread that returns stops nothing", "[threads]") {
  const StopSignal stop;
  std::atomic<bool> ran{false};
  GuardedThread thread(
      "the test's thread", [&ran] { ran = true; }, [&stop] { stop.request(); });
  CHECK_NOTHROW(thread.join());
  CHECK(ran);
  CHECK_FALSE(stop.requested());
}
