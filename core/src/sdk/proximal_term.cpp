#include "lorafed/proximal_term.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

// μ/2 · Σ ‖θ − θ_anchor‖² (docs/algorithms.md §FedProx).
class ProximalTerm final : public TrainingHook {
 public:
  ProximalTerm(double mu, NamedTensors anchor) : mu_(mu), anchor_(std::move(anchor)) {}

  void begin(const NamedTensors& trainable) override {
    for (const auto& [name, value] : anchor_) {
      const auto found = trainable.find(name);
      if (found == trainable.end()) {
        throw Error("proximal term: '" + name + "' is not among the tensors being trained");
      }
      if (!found->second.sizes().equals(value.sizes())) {
        throw Error("proximal term: '" + name + "' is trained with shape " +
                    c10::str(found->second.sizes()) + ", its anchor has " +
                    c10::str(value.sizes()));
      }
    }
  }

  at::Tensor loss_term(const NamedTensors& trainable) override {
    at::Tensor sum;
    for (const auto& [name, value] : anchor_) {
      const at::Tensor term = (trainable.at(name) - value).square().sum();
      sum = sum.defined() ? sum + term : term;
    }
    return sum.defined() ? (mu_ / 2) * sum : sum;
  }

 private:
  double mu_;
  NamedTensors anchor_;
};

}  // namespace

std::shared_ptr<TrainingHook> proximal_term(double mu, NamedTensors anchor) {
  if (!(mu >= 0) || !std::isfinite(mu)) {
    throw Error("proximal term: mu must be finite and at least 0, got " + std::to_string(mu));
  }
  for (auto& [name, value] : anchor) value = value.detach();
  return std::make_shared<ProximalTerm>(mu, std::move(anchor));
}

}  // namespace lorafed
