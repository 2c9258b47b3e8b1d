#pragma once

// What the server checks in a client's fit result before it is aggregated
// (docs/protocol.md, Validation). Free of LibTorch's operators: the fuzz
// target (tests/fuzz) compiles it.
#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/config_value.hpp"

namespace lorafed {

struct CheckedUpdate {
  Adapter adapter;
  NamedTensors parameters;  // the "param." tensors, without the prefix
  Adapter control;          // the "control." tensors: the adapter's layout, or none
};

// Splits `tensors` into shared parameters and the adapter's factors and
// checks both against `spec`: every parameter listed, of its shape, float32
// and finite; the factors under PEFT's names, with a rank in 1..max_rank
// (validate_adapter). Throws lorafed::FormatError saying what is wrong.
CheckedUpdate check_update(NamedTensors tensors, double alpha, const ModelSpec& spec,
                           std::int64_t max_rank);

// Removes the metrics a client reported that are not finite numbers (they
// would turn a round's averages into NaN); returns their names.
std::vector<std::string> drop_non_finite(Metrics& metrics);

}  // namespace lorafed
