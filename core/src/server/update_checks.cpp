#include "src/server/update_checks.hpp"

#include <ATen/core/Tensor.h>

#include <cmath>

#include "src/wire/messages.hpp"

namespace lorafed {

CheckedUpdate check_update(NamedTensors tensors, double alpha, const ModelSpec& spec,
                           std::int64_t max_rank) {
  CheckedUpdate update;
  update.parameters = wire::take_prefixed(tensors, wire::kParameterPrefix);
  validate_shared_parameters(update.parameters, spec);
  const NamedTensors control = wire::take_prefixed(tensors, wire::kControlPrefix);
  update.adapter = adapter_from_named_tensors(tensors, alpha);
  validate_adapter(update.adapter, spec, max_rank);
  if (!control.empty()) {
    update.control = adapter_from_named_tensors(control, alpha);
    validate_adapter(update.control, spec, max_rank);
    require_same_layout(tensors, control, "control variate");
  }
  return update;
}

std::vector<std::string> drop_non_finite(Metrics& metrics) {
  std::vector<std::string> dropped;
  for (auto metric = metrics.begin(); metric != metrics.end();) {
    if (std::isfinite(metric->second)) {
      ++metric;
      continue;
    }
    dropped.push_back(metric->first);
    metric = metrics.erase(metric);
  }
  return dropped;
}

}  // namespace lorafed
