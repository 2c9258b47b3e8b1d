#pragma once

#include <chrono>

namespace lorafed {

// Time as the runtime's components (broker, client host, round collector)
// see it. They take it from outside, so unit tests drive them with a
// synthetic clock instead of sleeping.
class RuntimeClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~RuntimeClock() = default;
  virtual time_point now() const = 0;

  // std::chrono::steady_clock: what every component uses outside tests.
  static const RuntimeClock& steady();
};

}  // namespace lorafed
