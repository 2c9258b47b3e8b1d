#pragma once

// Range checks for the framework's numeric configuration keys
// (docs/configuration.md lists each range). Every error names the key, its
// table and file, the value found and the range accepted.
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "lorafed/config.hpp"

namespace lorafed::config_range {

// A real interval; the bounds are closed unless marked open.
struct Interval {
  double low;
  double high;
  bool low_open = false;
  bool high_open = false;

  bool contains(double value) const {
    return std::isfinite(value) && (low_open ? value > low : value >= low) &&
           (high_open ? value < high : value <= high);
  }
  std::string text() const {
    return fmt::format("{}{:g}, {:g}{}", low_open ? '(' : '[', low, high, high_open ? ')' : ']');
  }
};

// Durations: at least 1 ms, since they are used as milliseconds (less would be
// 0, a busy loop); at most 1e9 s (~31 years), so that now + the duration still
// fits std::chrono's 64-bit nanoseconds. The numbers are documented.
inline constexpr Interval kSeconds{0.001, 1e9};

inline std::int64_t integer(const ConfigTable& table, std::string_view key, std::int64_t fallback,
                            std::int64_t low, std::int64_t high) {
  const std::int64_t value = table.get<std::int64_t>(key, fallback);
  if (value < low || value > high) {
    throw_config_error(table, key,
                       fmt::format("must be an integer from {} to {}, got {}", low, high, value));
  }
  return value;
}

inline double number(const ConfigTable& table, std::string_view key, double fallback,
                     const Interval& interval) {
  const double value = table.get<double>(key, fallback);
  if (!interval.contains(value)) {
    throw_config_error(
        table, key, fmt::format("must be a finite number in {}, got {:g}", interval.text(), value));
  }
  return value;
}

inline double seconds(const ConfigTable& table, std::string_view key, double fallback) {
  const double value = table.get<double>(key, fallback);
  if (!kSeconds.contains(value)) {
    throw_config_error(
        table, key,
        fmt::format("must be a number of seconds in {}, got {:g}", kSeconds.text(), value));
  }
  return value;
}

}  // namespace lorafed::config_range
