// PEFT's tensor names for LoRA factors: "<layer>.lora_A", "<layer>.lora_B".
// Free of LibTorch's operators: the fuzz target (tests/fuzz) compiles it.
#include <ATen/core/Tensor.h>

#include "lorafed/adapter.hpp"
#include "lorafed/error.hpp"

namespace lorafed {
namespace {
constexpr std::string_view kSuffixA = ".lora_A";
constexpr std::string_view kSuffixB = ".lora_B";
}  // namespace

NamedTensors to_named_tensors(const Adapter& adapter) {
  NamedTensors tensors;
  for (const auto& [name, factors] : adapter.layers) {
    tensors.emplace(name + std::string(kSuffixA), factors.a);
    tensors.emplace(name + std::string(kSuffixB), factors.b);
  }
  return tensors;
}

Adapter adapter_from_named_tensors(const NamedTensors& tensors, double alpha) {
  Adapter adapter;
  adapter.alpha = alpha;
  for (const auto& [name, tensor] : tensors) {
    if (name.ends_with(kSuffixA)) {
      adapter.layers[name.substr(0, name.size() - kSuffixA.size())].a = tensor;
    } else if (name.ends_with(kSuffixB)) {
      adapter.layers[name.substr(0, name.size() - kSuffixB.size())].b = tensor;
    } else {
      throw FormatError("tensor '" + name + "' is not a LoRA factor (expected <layer>.lora_A or " +
                        "<layer>.lora_B)");
    }
  }
  for (const auto& [name, factors] : adapter.layers) {
    if (!factors.a.defined() || !factors.b.defined()) {
      const std::string missing(factors.a.defined() ? kSuffixB : kSuffixA);
      const std::string present(factors.a.defined() ? kSuffixA : kSuffixB);
      throw FormatError("layer '" + name + "' has tensor '" + name + present + "' but no '" + name +
                        missing + "'");
    }
  }
  return adapter;
}

}  // namespace lorafed
