#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lorafed/config.hpp"
#include "lorafed/export.hpp"

namespace lorafed {

class TrainingHook;

// How a client trains locally; the `[train]` table of a configuration.
struct LORAFED_API TrainOptions {
  std::string optimizer = "sgd";  // "sgd" or "adamw"
  double learning_rate = 0.05;
  double momentum = 0.0;  // sgd only
  double weight_decay = 0.0;
  std::int64_t local_epochs = 1;
  std::int64_t local_steps = 0;  // > 0: this many steps instead of epochs
  std::int64_t batch_size = 32;
  double max_grad_norm = 0.0;  // > 0: clip the gradients' global norm to this
  // Set by a client procedure for one training call, never by configuration:
  // called around every optimiser step (training_hook.hpp).
  std::shared_ptr<TrainingHook> hook;

  // Reads and checks the `[train]` table (unknown keys are left for
  // reject_unknown_keys()).
  static TrainOptions from_config(const ConfigTable& table);
};

}  // namespace lorafed
