#include "src/privacy/privacy_config.hpp"

#include <fmt/format.h>

#include <random>

#include "lorafed/error.hpp"
#include "src/sdk/config_ranges.hpp"

namespace lorafed {

using config_range::Interval;
using config_range::number;

PrivacyConfig PrivacyConfig::read(const ConfigTable& table, std::int64_t num_clients) {
  PrivacyConfig config;
  // The other keys are checked with mode = "off" too, so that a sweep can
  // turn privacy off in one point and keep the table.
  const auto mode = table.get<std::string>("mode", "off");
  if (mode == "central") {
    config.mode = Mode::kCentral;
  } else if (mode == "local") {
    config.mode = Mode::kLocal;
  } else if (mode != "off") {
    throw_config_error(table, "mode",
                       "must be \"off\", \"central\" or \"local\", got \"" + mode + "\"");
  }
  config.clip_norm = number(table, "clip_norm", config.clip_norm, Interval{0, 1e12, true});
  // z = 0 would report a finite-looking ε for no privacy at all.
  config.noise_multiplier =
      number(table, "noise_multiplier", config.noise_multiplier, Interval{0, 1e6, true});
  // δ ≥ 1/N allows a mechanism that publishes one client's data whole.
  config.delta = number(table, "delta", config.delta,
                        Interval{0, 1.0 / static_cast<double>(num_clients), true, true});
  config.adaptive_clipping = table.get<bool>("adaptive_clipping", false);
  config.target_quantile =
      number(table, "target_quantile", config.target_quantile, Interval{0, 1, true, true});
  config.clip_learning_rate =
      number(table, "clip_learning_rate", config.clip_learning_rate, Interval{0, 10, true});
  config.count_noise_stddev =
      number(table, "count_noise_stddev", config.count_noise_stddev, Interval{0, 1e9});
  if (const auto seed = table.find<std::int64_t>("noise_seed")) {
    config.noise_seed = static_cast<std::uint64_t>(*seed);
  }
  if (config.adaptive_clipping && config.mode == Mode::kLocal) {
    throw_config_error(table, "adaptive_clipping",
                       "needs mode = \"central\": a client alone has no quantile to track");
  }
  if (config.adaptive_clipping && config.count_noise_stddev > 0 &&
      2 * config.count_noise_stddev <= config.noise_multiplier) {
    throw_config_error(
        table, "count_noise_stddev",
        fmt::format("must exceed noise_multiplier / 2 = {:g}, or the clipped count alone spends "
                    "more than the whole budget (docs/privacy.md)",
                    config.noise_multiplier / 2));
  }
  return config;
}

std::uint64_t secret_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace lorafed
