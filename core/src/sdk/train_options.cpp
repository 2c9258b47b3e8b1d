#include "lorafed/train_options.hpp"

namespace lorafed {

TrainOptions TrainOptions::from_config(const ConfigTable& table) {
  TrainOptions options;
  options.optimizer = table.get<std::string>("optimizer", options.optimizer);
  if (options.optimizer != "sgd" && options.optimizer != "adamw") {
    throw_config_error(table, "optimizer",
                       "must be \"sgd\" or \"adamw\", got \"" + options.optimizer + "\"");
  }
  options.learning_rate = table.get<double>("learning_rate", options.learning_rate);
  if (!(options.learning_rate > 0)) throw_config_error(table, "learning_rate", "must be positive");
  options.momentum = table.get<double>("momentum", options.momentum);
  if (options.momentum < 0 || options.momentum >= 1)
    throw_config_error(table, "momentum", "must be in [0, 1)");
  options.weight_decay = table.get<double>("weight_decay", options.weight_decay);
  if (options.weight_decay < 0) throw_config_error(table, "weight_decay", "must not be negative");
  options.local_epochs = table.get<std::int64_t>("local_epochs", options.local_epochs);
  options.local_steps = table.get<std::int64_t>("local_steps", options.local_steps);
  if (options.local_steps < 0) throw_config_error(table, "local_steps", "must not be negative");
  if (options.local_steps == 0 && options.local_epochs < 1) {
    throw_config_error(table, "local_epochs", "must be at least 1 when local_steps is 0");
  }
  options.batch_size = table.get<std::int64_t>("batch_size", options.batch_size);
  if (options.batch_size < 1) throw_config_error(table, "batch_size", "must be at least 1");
  options.max_grad_norm = table.get<double>("max_grad_norm", options.max_grad_norm);
  if (options.max_grad_norm < 0) throw_config_error(table, "max_grad_norm", "must not be negative");
  return options;
}

}  // namespace lorafed
