#include "src/runtime_clock.hpp"

namespace lorafed {
namespace {

class SteadyClock final : public RuntimeClock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

const RuntimeClock& RuntimeClock::steady() {
  static const SteadyClock clock;
  return clock;
}

}  // namespace lorafed
