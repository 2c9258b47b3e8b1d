#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "lorafed/model_backend.hpp"
#include "mlp_data.hpp"

namespace lorafed::mlp {

using Forward = std::function<torch::Tensor(const torch::Tensor&)>;

// Minimises cross-entropy over `parameters` (all others must not require
// gradients) with the configured optimizer, for options.local_steps steps
// or options.local_epochs epochs of shuffled mini-batches. The shuffle is
// drawn from `seed`, so a run is reproducible.
TrainReport train_classifier(const Forward& forward, std::vector<torch::Tensor> parameters,
                             const Examples& examples, const TrainOptions& options,
                             std::uint64_t seed);

EvalReport evaluate_classifier(const Forward& forward, const Examples& examples,
                               std::int64_t batch_size = 1000);

}  // namespace lorafed::mlp
