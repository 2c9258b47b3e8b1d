#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace lorafed {

// Tensors by name, ordered so that iteration (and so every sum over them)
// is the same on every machine.
using NamedTensors = std::map<std::string, at::Tensor>;

}  // namespace lorafed
