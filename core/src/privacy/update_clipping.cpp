#include "src/privacy/update_clipping.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed {

double update_norm(const NamedTensors& update) {
  double squares = 0;
  for (const auto& [name, tensor] : update) {
    const double norm =
        at::linalg_vector_norm(tensor, 2, c10::nullopt, false, at::kDouble).item<double>();
    squares += norm * norm;
  }
  return std::sqrt(squares);
}

double clip_factor(double norm, double clip_norm) {
  return norm > clip_norm ? clip_norm / norm : 1.0;
}

void add_scaled(NamedTensors& into, const NamedTensors& update, double factor) {
  if (into.empty()) {
    for (const auto& [name, tensor] : update) into.emplace(name, tensor * factor);
    return;
  }
  if (into.size() != update.size()) throw FormatError("updates differ in their tensors");
  for (const auto& [name, tensor] : update) {
    const auto found = into.find(name);
    if (found == into.end()) throw FormatError("update has an unexpected tensor '" + name + "'");
    if (!found->second.sizes().equals(tensor.sizes())) {
      throw FormatError("update tensor '" + name + "' differs in shape between clients");
    }
    found->second.add_(tensor, factor);
  }
}

void add_gaussian_noise(NamedTensors& update, double stddev, at::Generator& generator) {
  for (auto& [name, tensor] : update) {
    tensor.add_(at::randn(tensor.sizes(), generator, tensor.options()), stddev);
  }
}

at::Generator noise_generator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

}  // namespace lorafed
