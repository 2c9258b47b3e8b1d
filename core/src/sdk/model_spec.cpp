#include "lorafed/model_spec.hpp"

#include "lorafed/error.hpp"

namespace lorafed {

const TargetLayer& ModelSpec::target(const std::string& name) const {
  for (const TargetLayer& layer : targets) {
    if (layer.name == name) return layer;
  }
  throw Error("model '" + model_id + "' has no LoRA target layer '" + name + "'");
}

}  // namespace lorafed
