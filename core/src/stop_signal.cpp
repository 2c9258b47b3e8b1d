#include "src/stop_signal.hpp"

#include <csignal>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

std::atomic<bool> stop_flag{false};  // set by a signal or by StopSignal::request
std::atomic<bool> signalled{false};  // set by a signal only: the second one ends the process
volatile std::sig_atomic_t received_signal = 0;
std::atomic<bool> installed{false};
struct sigaction previous_int {};
struct sigaction previous_term {};

static_assert(std::atomic<bool>::is_always_lock_free,
              "a signal handler may only touch lock-free atomics");

void on_signal(int number) {
  if (signalled.exchange(true)) {
    // The second one: the user insists.
    std::signal(number, SIG_DFL);
    std::raise(number);
    return;
  }
  received_signal = number;
  stop_flag = true;
}

}  // namespace

StopSignal::StopSignal() {
  if (installed.exchange(true)) throw Error("StopSignal: one is installed already");
  stop_flag = false;
  signalled = false;
  received_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking wait returns, and its loop looks at the flag
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

StopSignal::~StopSignal() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  installed = false;
}

const std::atomic<bool>& StopSignal::flag() const {
  return stop_flag;
}

void StopSignal::request() const {
  stop_flag = true;
}

const char* StopSignal::name() const {
  switch (received_signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "";
  }
}

}  // namespace lorafed
