#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace lorafed {

// A value a strategy sends to a client along with its adapter (FitIns and
// EvaluateIns config), or a metric key's value.
using ConfigValue = std::variant<bool, std::int64_t, double, std::string>;
using ConfigMap = std::map<std::string, ConfigValue>;

// Metrics a client or strategy reports: name → number.
using Metrics = std::map<std::string, double>;

}  // namespace lorafed
