#include "src/wire/messages.hpp"

namespace lorafed::wire {

namespace {
constexpr const char* kNames[] = {"Register",    "FitIns",      "FitRes",
                                  "EvaluateIns", "EvaluateRes", "Heartbeat",
                                  "Reconnect",   "Shutdown",    "Error"};
static_assert(std::variant_size_v<Body> == std::size(kNames));
}  // namespace

const char* body_name(const Body& body) {
  return kNames[body.index()];
}

const char* body_name(BodyKind kind) {
  return kNames[static_cast<std::size_t>(kind)];
}

NamedTensors take_prefixed(NamedTensors& tensors, const std::string& prefix) {
  NamedTensors taken;
  for (auto it = tensors.begin(); it != tensors.end();) {
    if (it->first.starts_with(prefix)) {
      taken.emplace(it->first.substr(prefix.size()), std::move(it->second));
      it = tensors.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

}  // namespace lorafed::wire
