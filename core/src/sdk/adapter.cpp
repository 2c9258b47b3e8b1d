#include "lorafed/adapter.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed {
std::int64_t Adapter::rank() const {
  if (layers.empty()) return 0;
  return layers.begin()->second.a.size(0);
}

double Adapter::scale() const {
  const std::int64_t r = rank();
  if (r == 0) throw Error("adapter has no layers, so no scale");
  return alpha / static_cast<double>(r);
}

NamedTensors Adapter::dense_delta() const {
  NamedTensors delta;
  const double s = scale();
  for (const auto& [name, factors] : layers)
    delta.emplace(name, at::matmul(factors.b, factors.a).mul_(s));
  return delta;
}

Adapter Adapter::clone() const {
  Adapter copy;
  copy.alpha = alpha;
  for (const auto& [name, factors] : layers) {
    copy.layers.emplace(name, LoraFactors{factors.a.clone(), factors.b.clone()});
  }
  return copy;
}

Adapter init_adapter(const ModelSpec& spec, std::int64_t rank, double alpha, std::uint64_t seed) {
  if (rank < 1) throw ConfigError("LoRA rank must be at least 1, got " + std::to_string(rank));
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  Adapter adapter;
  adapter.alpha = alpha;
  for (const TargetLayer& layer : spec.targets) {
    // Kaiming-uniform with a = sqrt(5), as torch.nn.Linear and PEFT initialise lora_A.
    const double bound = 1.0 / std::sqrt(static_cast<double>(layer.in_features));
    at::Tensor a =
        at::empty({rank, layer.in_features}, at::kFloat).uniform_(-bound, bound, generator);
    at::Tensor b = at::zeros({layer.out_features, rank}, at::kFloat);
    adapter.layers.emplace(layer.name, LoraFactors{std::move(a), std::move(b)});
  }
  return adapter;
}

namespace {
constexpr const char* kAlphaName = "alpha";
}  // namespace

NamedTensors adapter_state(const Adapter& adapter) {
  NamedTensors state = to_named_tensors(adapter);
  state.emplace(kAlphaName, at::scalar_tensor(adapter.alpha, at::kDouble));
  return state;
}

Adapter adapter_from_state(const NamedTensors& state) {
  NamedTensors factors = state;
  const auto alpha = factors.find(kAlphaName);
  if (alpha == factors.end() || alpha->second.numel() != 1) {
    throw FormatError("adapter state has no scalar 'alpha'");
  }
  const double value = alpha->second.to(at::kDouble).item<double>();
  if (!std::isfinite(value) || value <= 0) throw FormatError("adapter state's alpha is invalid");
  factors.erase(alpha);
  return adapter_from_named_tensors(factors, value);
}

}  // namespace lorafed
