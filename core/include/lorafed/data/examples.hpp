#pragma once

#include <ATen/core/Tensor.h>

namespace lorafed::data {

// Inputs and their class labels, row for row.
struct Examples {
  at::Tensor inputs;  // N × features, float32
  at::Tensor labels;  // N, int64
};

}  // namespace lorafed::data
