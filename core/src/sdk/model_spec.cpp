#include "lorafed/model_spec.hpp"

#include <ATen/core/Tensor.h>

#include <algorithm>

#include "lorafed/error.hpp"
#include "src/sdk/finite.hpp"

namespace lorafed {

const TargetLayer& ModelSpec::target(const std::string& name) const {
  for (const TargetLayer& layer : targets) {
    if (layer.name == name) return layer;
  }
  throw Error("model '" + model_id + "' has no LoRA target layer '" + name + "'");
}

void validate_shared_parameters(const NamedTensors& parameters, const ModelSpec& spec) {
  for (const auto& [name, tensor] : parameters) {
    const auto expected =
        std::find_if(spec.shared_parameters.begin(), spec.shared_parameters.end(),
                     [&name = name](const SharedParameter& shared) { return shared.name == name; });
    if (expected == spec.shared_parameters.end()) {
      throw FormatError("'" + name + "' is not a shared parameter of model '" + spec.model_id +
                        "'");
    }
    if (tensor.scalar_type() != at::kFloat)
      throw FormatError("shared parameter '" + name + "' must be float32");
    if (!std::equal(expected->shape.begin(), expected->shape.end(), tensor.sizes().begin(),
                    tensor.sizes().end())) {
      throw FormatError("shared parameter '" + name + "' has shape " + c10::str(tensor.sizes()) +
                        ", expected " + c10::str(c10::IntArrayRef(expected->shape)));
    }
    if (!all_finite(tensor))
      throw FormatError("shared parameter '" + name + "' has a NaN or infinite value");
  }
}

}  // namespace lorafed
