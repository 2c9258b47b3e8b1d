#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

#include "lorafed/export.hpp"

namespace lorafed {

// Tensors by name, ordered so that iteration (and so every sum over them)
// is the same on every machine.
using NamedTensors = std::map<std::string, at::Tensor>;

// The number of elements of all the tensors together.
inline std::int64_t total_elements(const NamedTensors& tensors) {
  std::int64_t total = 0;
  for (const auto& [name, tensor] : tensors) total += tensor.numel();
  return total;
}

// Throws FormatError, naming `what` and the tensor, unless `got` has
// exactly the names of `expected`, each with its shape and dtype.
LORAFED_API void require_same_layout(const NamedTensors& expected, const NamedTensors& got,
                                     const std::string& what);

}  // namespace lorafed
