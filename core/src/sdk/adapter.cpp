#include "lorafed/adapter.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "lorafed/error.hpp"
#include "src/sdk/finite.hpp"

namespace lorafed {
namespace {
constexpr const char* kSuffixA = ".lora_A";
constexpr const char* kSuffixB = ".lora_B";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

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

NamedTensors to_named_tensors(const Adapter& adapter) {
  NamedTensors tensors;
  for (const auto& [name, factors] : adapter.layers) {
    tensors.emplace(name + kSuffixA, factors.a);
    tensors.emplace(name + kSuffixB, factors.b);
  }
  return tensors;
}

Adapter adapter_from_named_tensors(const NamedTensors& tensors, double alpha) {
  Adapter adapter;
  adapter.alpha = alpha;
  for (const auto& [name, tensor] : tensors) {
    if (ends_with(name, kSuffixA)) {
      adapter.layers[name.substr(0, name.size() - 7)].a = tensor;
    } else if (ends_with(name, kSuffixB)) {
      adapter.layers[name.substr(0, name.size() - 7)].b = tensor;
    } else {
      throw FormatError("tensor '" + name + "' is not a LoRA factor (expected <layer>.lora_A or " +
                        "<layer>.lora_B)");
    }
  }
  for (const auto& [name, factors] : adapter.layers) {
    if (!factors.a.defined() || !factors.b.defined()) {
      throw FormatError("layer '" + name + "' has only one of lora_A and lora_B");
    }
  }
  return adapter;
}

void validate_adapter(const Adapter& adapter, const ModelSpec& spec, std::int64_t max_rank) {
  if (adapter.layers.empty()) return;  // no adapter sent (personalised strategies)
  if (!std::isfinite(adapter.alpha) || adapter.alpha <= 0) {
    throw FormatError("adapter alpha " + std::to_string(adapter.alpha) +
                      " is not a positive number");
  }
  for (const auto& [name, factors] : adapter.layers) {
    (void)factors;
    bool known = false;
    for (const TargetLayer& layer : spec.targets) known = known || layer.name == name;
    if (!known)
      throw FormatError("adapter layer '" + name + "' is not a target of model '" + spec.model_id +
                        "'");
  }
  const std::int64_t rank = adapter.rank();
  for (const TargetLayer& layer : spec.targets) {
    const auto found = adapter.layers.find(layer.name);
    if (found == adapter.layers.end())
      throw FormatError("adapter lacks target layer '" + layer.name + "'");
    const LoraFactors& factors = found->second;
    auto shape_text = [](const at::Tensor& t) {
      std::string text;
      for (std::int64_t d : t.sizes()) text += (text.empty() ? "" : "×") + std::to_string(d);
      return text;
    };
    const std::string where = "layer '" + layer.name + "'";
    if (factors.a.dim() != 2 || factors.b.dim() != 2)
      throw FormatError(where + ": factors must be matrices");
    if (factors.a.scalar_type() != at::kFloat || factors.b.scalar_type() != at::kFloat) {
      throw FormatError(where + ": factors must be float32");
    }
    const std::int64_t r = factors.a.size(0);
    if (r != rank)
      throw FormatError(where + ": rank " + std::to_string(r) + " differs from the adapter's " +
                        std::to_string(rank));
    if (r < 1 || r > max_rank) {
      throw FormatError(where + ": rank " + std::to_string(r) + " outside 1.." +
                        std::to_string(max_rank));
    }
    if (factors.a.size(1) != layer.in_features || factors.b.size(0) != layer.out_features ||
        factors.b.size(1) != r) {
      throw FormatError(where + ": expected A " + std::to_string(r) + "×" +
                        std::to_string(layer.in_features) + " and B " +
                        std::to_string(layer.out_features) + "×" + std::to_string(r) + ", got A " +
                        shape_text(factors.a) + " and B " + shape_text(factors.b));
    }
    if (!all_finite(factors.a) || !all_finite(factors.b)) {
      throw FormatError(where + ": factors contain NaN or Inf");
    }
  }
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

}  // namespace lorafed
