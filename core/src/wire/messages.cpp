#include "src/wire/messages.hpp"

namespace lorafed::wire {

const char* body_name(const Body& body) {
  static constexpr const char* kNames[] = {"Register",    "FitIns",      "FitRes",
                                           "EvaluateIns", "EvaluateRes", "Heartbeat",
                                           "Reconnect",   "Shutdown",    "Error"};
  static_assert(std::variant_size_v<Body> == std::size(kNames));
  return kNames[body.index()];
}

}  // namespace lorafed::wire
