#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

#include "lorafed/export.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed {

// The factors of one target layer: the layer computes W0 + scale·B·A.
struct LoraFactors {
  at::Tensor a;  // rank × in_features
  at::Tensor b;  // out_features × rank
};

// A LoRA adapter: factors per target layer, one rank for all layers, and
// alpha (scale = alpha / rank), as docs/algorithms.md §Notation defines.
struct LORAFED_API Adapter {
  double alpha = 16.0;
  std::map<std::string, LoraFactors> layers;

  // The common rank of every layer; 0 for an empty adapter.
  std::int64_t rank() const;
  double scale() const;
  // Dense scale·B·A per layer (out × in).
  NamedTensors dense_delta() const;
  // Deep copy (the factors of the copy share no storage with this one).
  Adapter clone() const;
};

// Tensor names follow PEFT: "<layer>.lora_A", "<layer>.lora_B".
LORAFED_API NamedTensors to_named_tensors(const Adapter& adapter);
LORAFED_API Adapter adapter_from_named_tensors(const NamedTensors& tensors, double alpha);

// An adapter and its alpha as named tensors (PEFT's names and "alpha"), and
// back: what a procedure carries between rounds (ClientProcedure::client_state).
// adapter_from_state throws FormatError when "alpha" is missing or invalid.
LORAFED_API NamedTensors adapter_state(const Adapter& adapter);
LORAFED_API Adapter adapter_from_state(const NamedTensors& state);

// Checks every layer of `spec` is present with A: rank×in and B: out×rank,
// float32, finite and of magnitude below 2^16, and 1 ≤ rank ≤ max_rank; no
// extra layers. Throws lorafed::FormatError naming the layer and what is wrong. An empty adapter
// (no layers: nothing sent, as Standalone and LG-FedAvg do) is valid.
LORAFED_API void validate_adapter(const Adapter& adapter, const ModelSpec& spec,
                                  std::int64_t max_rank);

// LoRA's initialisation (as PEFT does it): A Kaiming-uniform, B zero, so the
// adapter starts as the identity change. Seeded.
LORAFED_API Adapter init_adapter(const ModelSpec& spec, std::int64_t rank, double alpha,
                                 std::uint64_t seed);

}  // namespace lorafed
