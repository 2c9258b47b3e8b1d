#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::cnnzoo {

// One of the five CNNs of the model-heterogeneous FL zoo (README.md): two
// 5×5 convolutions with 2×2 max-pooling, then fc1 (→ fc1_width), fc2
// (→ 500, the shared representation width) and the classifier fc3 (500 → 10).
struct Architecture {
  int id;                       // 1..5
  std::int64_t conv2_channels;  // 32 or 16
  std::int64_t fc1_width;       // 2000, 1000, 800 or 500
};

// Throws lorafed::ConfigError for an id outside 1..5.
const Architecture& architecture(int id);

inline constexpr std::int64_t kRepresentationWidth = 500;
inline constexpr std::int64_t kClasses = 10;
// The layer that carries the homogeneous adapter: the classifier, the one
// fully connected layer whose shape (10 × 500) is the same in every model.
inline constexpr const char* kAdapterLayer = "fc3";

// The network's parameters as plain tensors, its LoRA factors on fc3, and
// the forward pass: logits = fc3(h) + (alpha/r)·B·A·h, h the 500-wide
// representation (docs/algorithms.md §pFedLoRA).
class ZooNet {
 public:
  ZooNet(const Architecture& architecture, std::uint64_t seed);

  at::Tensor forward(const at::Tensor& images) const;  // N × 784 → N × 10

  const Architecture& architecture() const { return architecture_; }
  // "conv1.weight", "conv1.bias", ..., "fc3.bias": the local model.
  const NamedTensors& local() const { return local_; }
  NamedTensors local_tensors() const;               // the live tensors, to train
  void load_local(const NamedTensors& parameters);  // copies into the named tensors
  std::int64_t num_local_parameters() const;

  void install_adapter(const Adapter& adapter);  // copies; empty removes the adapter
  Adapter adapter() const;                       // detached copies
  NamedTensors adapter_tensors() const;          // the live factors, to train (PEFT names)

  // Floating-point operations of one example's forward and backward pass
  // when `group` is trained (multiply-adds × 2 of the convolutions and
  // linear maps; pooling, activations and the optimizer are not counted).
  double training_flops_per_example(ParameterGroup group) const;

 private:
  Architecture architecture_;
  NamedTensors local_;
  Adapter adapter_;
};

}  // namespace lorafed::cnnzoo
