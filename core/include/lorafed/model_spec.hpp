#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/export.hpp"

namespace lorafed {

// One linear map W0 (out_features × in_features) that carries a LoRA adapter.
struct TargetLayer {
  std::string name;
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
};

// What a model backend exposes to strategies: its LoRA target layers. Server
// and clients must agree on it; every tensor received is checked against it.
struct LORAFED_API ModelSpec {
  std::string model_id;
  std::vector<TargetLayer> targets;

  // Throws lorafed::Error naming the layer when it is not a target.
  const TargetLayer& target(const std::string& name) const;
};

}  // namespace lorafed
