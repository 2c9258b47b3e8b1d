#pragma once
// A client procedure's say in every optimiser step of its model's training:
// terms added to the loss, gradients changed before the step. FedProx's
// proximal term is one (proximal_term.hpp); docs/writing-a-strategy.md,
// "Training hooks", shows how to write others.

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "lorafed/export.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed {

// Every model backend's training runs the SDK's loop (training_loop.hpp),
// which calls the hook of its TrainOptions, if any, as below. `trainable`
// holds the tensors being trained, named as the backend names them: LoRA
// factors "<layer>.lora_A" and "<layer>.lora_B" (to_named_tensors), the
// model's own parameters as local_parameters() names them. They are the
// model's live tensors: read them, do not replace them. A hook lives for
// one ModelBackend::train call; the procedure that made it owns it.
class LORAFED_API TrainingHook {
 public:
  virtual ~TrainingHook();
  // Once, before the first step.
  virtual void begin(const NamedTensors& trainable);
  // Added to each step's loss before the backward pass; an undefined tensor
  // (the default) adds nothing. The loss the training reports is the
  // model's own, without these terms.
  virtual at::Tensor loss_term(const NamedTensors& trainable);
  // After the backward pass, before gradient clipping and the optimiser's
  // step: may change each tensor's grad() in place.
  virtual void before_step(const NamedTensors& trainable);
  // Once, after the last of `steps` steps.
  virtual void end(const NamedTensors& trainable, std::int64_t steps);
};

}  // namespace lorafed
