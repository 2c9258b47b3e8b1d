// A thread that fails ends the run, not the process: its exception is kept
// for the owner, and it asks the rest of the process to stop.
#include <catch2/catch.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <sstream>

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

TEST_CASE("guarded thread: after a thread stopped the run, the first signal is only a request",
          "[threads][signals]") {
  const StopSignal stop;
  stop.request();
  std::raise(SIGTERM);  // a second signal would end the process here
  CHECK(stop.requested());
  CHECK(std::string(stop.name()) == "SIGTERM");
}

namespace {

// What `serve_beside_threads` throws and logs for a server and threads that fail or not.
struct Outcome {
  std::string thrown;  // empty: nothing
  std::string log;
};

Outcome serve_and_stop(const std::function<void()>& serve, const std::function<void()>& stop) {
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));
  Outcome outcome;
  try {
    serve_beside_threads(serve, stop);
  } catch (const std::exception& error) {
    outcome.thrown = error.what();
  }
  spdlog::set_default_logger(previous);
  outcome.log = log.str();
  return outcome;
}

}  // namespace

TEST_CASE("serving beside threads: a thread's failure is the cause, the server's own is logged",
          "[threads]") {
  const auto fails = [](const char* what) { return [what] { throw Error(what); }; };
  const auto interrupted = [] { throw Interrupted("stopped in round 3"); };
  const auto fine = [] {};

  SECTION("a thread failed and stopped the server: the thread's failure, nothing else logged") {
    const Outcome outcome = serve_and_stop(interrupted, fails("the channel is gone"));
    CHECK(outcome.thrown == "the channel is gone");
    CHECK(outcome.log.empty());
  }
  SECTION("both failed of their own: the thread's is thrown, the server's logged, not lost") {
    const Outcome outcome =
        serve_and_stop(fails("cannot write checkpoint: disk full"), fails("the channel is gone"));
    CHECK(outcome.thrown == "the channel is gone");
    CHECK_THAT(outcome.log,
               Catch::Contains("the server failed too: cannot write checkpoint: disk full"));
  }
  SECTION("only the server failed") {
    const Outcome outcome = serve_and_stop(fails("cannot write checkpoint: disk full"), fine);
    CHECK(outcome.thrown == "cannot write checkpoint: disk full");
  }
  SECTION("nothing failed") {
    const Outcome outcome = serve_and_stop(fine, fine);
    CHECK(outcome.thrown.empty());
    CHECK(outcome.log.empty());
  }
}
