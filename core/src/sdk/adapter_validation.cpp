// validate_adapter: what every received adapter must be before it is used.
// Free of LibTorch's operators: the fuzz target (tests/fuzz) compiles it.
#include <ATen/core/Tensor.h>

#include <cmath>

#include "lorafed/adapter.hpp"
#include "lorafed/error.hpp"
#include "src/sdk/finite.hpp"

namespace lorafed {
namespace {

std::string shape_text(const at::Tensor& tensor) {
  std::string text;
  for (std::int64_t d : tensor.sizes()) text += (text.empty() ? "" : "×") + std::to_string(d);
  return text.empty() ? "a scalar" : text;
}

}  // namespace

// Trained LoRA factors are a few units in size; factors of 2^16 and more
// are a diverged or hostile client's, and their products, summed over
// clients and rounds, would overflow a float32 global model
// (docs/protocol.md, Validation).
constexpr int kFactorExponentLimit = 16;

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
  // Every layer is a target, so the first target's rank is the adapter's;
  // it is read only once its factors are known to be matrices (a hostile
  // peer may send a scalar).
  std::int64_t rank = -1;
  for (const TargetLayer& layer : spec.targets) {
    const auto found = adapter.layers.find(layer.name);
    if (found == adapter.layers.end())
      throw FormatError("adapter lacks target layer '" + layer.name + "'");
    const LoraFactors& factors = found->second;
    const std::string where = "layer '" + layer.name + "'";
    if (factors.a.dim() != 2 || factors.b.dim() != 2) {
      throw FormatError(where + ": factors must be matrices, got A " + shape_text(factors.a) +
                        " and B " + shape_text(factors.b));
    }
    if (factors.a.scalar_type() != at::kFloat || factors.b.scalar_type() != at::kFloat) {
      throw FormatError(where + ": factors must be float32");
    }
    const std::int64_t r = factors.a.size(0);
    if (rank < 0) rank = r;
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
    if (!all_within(factors.a, kFactorExponentLimit) ||
        !all_within(factors.b, kFactorExponentLimit)) {
      throw FormatError(where + ": factors contain NaN, Inf or a value of magnitude 2^" +
                        std::to_string(kFactorExponentLimit) + " or more");
    }
  }
}

}  // namespace lorafed
