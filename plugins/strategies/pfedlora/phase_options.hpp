#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lorafed/config.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed::pfedlora {

// One phase's length and learning rate (`<phase>_epochs`, `<phase>_steps`,
// `<phase>_learning_rate` in [strategy]); unset ones follow [train]. Steps,
// when given, take precedence over epochs, as in [train].
struct PhaseOptions {
  std::optional<std::int64_t> epochs;
  std::optional<std::int64_t> steps;
  std::optional<double> learning_rate;

  static PhaseOptions read(const ConfigTable& config, const std::string& phase) {
    PhaseOptions options;
    if (auto epochs = config.find<std::int64_t>(phase + "_epochs")) {
      if (*epochs < 1) throw_config_error(config, phase + "_epochs", "must be at least 1");
      options.epochs = *epochs;
    }
    if (auto steps = config.find<std::int64_t>(phase + "_steps")) {
      if (*steps < 1) throw_config_error(config, phase + "_steps", "must be at least 1");
      options.steps = *steps;
    }
    if (auto rate = config.find<double>(phase + "_learning_rate")) {
      if (!(*rate > 0)) throw_config_error(config, phase + "_learning_rate", "must be positive");
      options.learning_rate = *rate;
    }
    return options;
  }

  TrainOptions apply(TrainOptions train) const {
    if (epochs) {
      train.local_epochs = *epochs;
      train.local_steps = 0;
    }
    if (steps) train.local_steps = *steps;
    if (learning_rate) train.learning_rate = *learning_rate;
    return train;
  }
};

}  // namespace lorafed::pfedlora
