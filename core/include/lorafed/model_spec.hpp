#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/export.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed {

// One linear map W0 (out_features × in_features) that carries a LoRA adapter.
struct TargetLayer {
  std::string name;
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
};

// A model parameter that has the same name and shape on every client, so a
// strategy may share it whole (LG-FedAvg shares the classifier head).
struct SharedParameter {
  std::string name;
  std::vector<std::int64_t> shape;
};

// What a model backend exposes to strategies: its LoRA target layers and the
// parameters it can share. Server and clients must agree on it; every tensor
// received is checked against it.
struct LORAFED_API ModelSpec {
  std::string model_id;
  std::vector<TargetLayer> targets;
  std::vector<SharedParameter> shared_parameters;  // empty for most models

  // Throws lorafed::Error naming the layer when it is not a target.
  const TargetLayer& target(const std::string& name) const;
};

// Checks that every tensor is a shared parameter of `spec`, float32, of its
// shape and finite. Throws lorafed::FormatError naming the tensor.
LORAFED_API void validate_shared_parameters(const NamedTensors& parameters, const ModelSpec& spec);

}  // namespace lorafed
