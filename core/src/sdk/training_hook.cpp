#include "lorafed/training_hook.hpp"

namespace lorafed {

TrainingHook::~TrainingHook() = default;
void TrainingHook::begin(const NamedTensors&) {}
at::Tensor TrainingHook::loss_term(const NamedTensors&) {
  return {};
}
void TrainingHook::before_step(const NamedTensors&) {}
void TrainingHook::end(const NamedTensors&, std::int64_t) {}

}  // namespace lorafed
