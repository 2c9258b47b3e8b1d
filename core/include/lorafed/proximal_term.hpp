#pragma once
// FedProx's proximal term (docs/algorithms.md §FedProx) as a training hook.

#include <memory>

#include "lorafed/named_tensors.hpp"
#include "lorafed/training_hook.hpp"

namespace lorafed {

// A hook that minimises μ/2 · Σ ‖θ − θ_anchor‖² over the trainable tensors
// named in `anchor` along with the model's loss: it adds the term's
// gradient, μ (θ − θ_anchor), to every step's gradient before clipping.
// Every name in `anchor` must be trained, with the anchor's shape; trained
// tensors it does not name are not pulled. μ = 0 changes nothing.
LORAFED_API std::shared_ptr<TrainingHook> proximal_term(double mu, NamedTensors anchor);

}  // namespace lorafed
