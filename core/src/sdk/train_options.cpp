#include "lorafed/train_options.hpp"

#include <limits>

#include "src/sdk/config_ranges.hpp"

namespace lorafed {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr std::int64_t kMaxEpochs = 1'000'000;
constexpr std::int64_t kMaxSteps = 1'000'000'000;
constexpr std::int64_t kMaxBatch = std::numeric_limits<int>::max();

}  // namespace

TrainOptions TrainOptions::from_config(const ConfigTable& table) {
  using config_range::integer;
  using config_range::Interval;
  using config_range::number;
  TrainOptions options;
  options.optimizer = table.get<std::string>("optimizer", options.optimizer);
  if (options.optimizer != "sgd" && options.optimizer != "adamw") {
    throw_config_error(table, "optimizer",
                       "must be \"sgd\" or \"adamw\", got \"" + options.optimizer + "\"");
  }
  options.learning_rate =
      number(table, "learning_rate", options.learning_rate, Interval{0, kInfinity, true, true});
  options.momentum = number(table, "momentum", options.momentum, Interval{0, 1, false, true});
  options.weight_decay =
      number(table, "weight_decay", options.weight_decay, Interval{0, kInfinity, false, true});
  options.local_epochs = integer(table, "local_epochs", options.local_epochs, 0, kMaxEpochs);
  options.local_steps = integer(table, "local_steps", options.local_steps, 0, kMaxSteps);
  if (options.local_steps == 0 && options.local_epochs < 1) {
    throw_config_error(table, "local_epochs", "must be at least 1 when local_steps is 0");
  }
  options.batch_size = integer(table, "batch_size", options.batch_size, 1, kMaxBatch);
  options.max_grad_norm =
      number(table, "max_grad_norm", options.max_grad_norm, Interval{0, kInfinity, false, true});
  return options;
}

}  // namespace lorafed
