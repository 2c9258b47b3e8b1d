#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "lorafed/export.hpp"

namespace lorafed::data {

// Inputs and their class labels, row for row. With `rows`, the examples are
// those rows of `inputs` and `labels`, which many Examples may then share:
// the clients of one process hold a dataset once, each its partition as
// indices.
struct LORAFED_API Examples {
  at::Tensor inputs;  // N × features, float32
  at::Tensor labels;  // N, int64
  at::Tensor rows;    // undefined: all N rows; else int64 indices into inputs and labels

  // How many examples there are (0 when nothing is defined).
  std::int64_t size() const;
  // Examples `positions` (int64, each in 0 .. size()-1) as a batch of their
  // own: inputs and labels copied out, no rows.
  Examples batch(const at::Tensor& positions) const;
  // Examples begin .. end-1, as batch() does.
  Examples range(std::int64_t begin, std::int64_t end) const;
};

}  // namespace lorafed::data
