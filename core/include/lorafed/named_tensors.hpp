#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

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

}  // namespace lorafed
