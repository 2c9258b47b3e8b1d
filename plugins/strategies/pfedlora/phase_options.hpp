#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lorafed/config.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed::pfedlora {

// One phase's epochs and learning rate (`<phase>_epochs`,
// `<phase>_learning_rate` in [strategy]); unset ones follow [train].
struct PhaseOptions {
  std::optional<std::int64_t> epochs;
  std::optional<double> learning_rate;

  static PhaseOptions read(const ConfigTable& config, const std::string& phase) {
    PhaseOptions options;
    if (auto epochs = config.find<std::int64_t>(phase + "_epochs")) {
      if (*epochs < 1) throw_config_error(config, phase + "_epochs", "must be at least 1");
      options.epochs = *epochs;
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
    if (learning_rate) train.learning_rate = *learning_rate;
    return train;
  }
};

}  // namespace lorafed::pfedlora
