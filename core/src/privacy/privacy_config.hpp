#pragma once

#include <cstdint>
#include <optional>

#include "lorafed/config.hpp"

namespace lorafed {

// [privacy]: client-level differential privacy (docs/privacy.md; the
// mechanism is docs/algorithms.md §Differential privacy).
struct PrivacyConfig {
  enum class Mode {
    kOff,
    kCentral,  // the server clips each update and noises the sum
    kLocal,    // each client clips and noises its own update before sending
  };
  Mode mode = Mode::kOff;
  double clip_norm = 1.0;         // C; with adaptive clipping, the first round's C
  double noise_multiplier = 1.0;  // z: the noise's standard deviation is z · C · max_i p_i
  double delta = 1e-5;            // the δ that ε is reported for
  bool adaptive_clipping = false;
  double target_quantile = 0.5;     // γ: the share of updates left unclipped
  double clip_learning_rate = 0.2;  // η_C
  double count_noise_stddev = 0;    // σ_b; 0: max(m/20, z) for m sampled clients
  // Seeds the noise and the client sampling; unset: the operating
  // system's randomness, so nobody can regenerate the noise from the
  // configuration. Set it only to reproduce a run.
  std::optional<std::uint64_t> noise_seed;

  bool enabled() const { return mode != Mode::kOff; }

  // Reads the [privacy] table; ConfigError naming the key for a bad value.
  // `num_clients` bounds δ (δ < 1/num_clients).
  static PrivacyConfig read(const ConfigTable& table, std::int64_t num_clients);
};

// A seed nobody can predict, from the operating system.
std::uint64_t secret_seed();

}  // namespace lorafed
