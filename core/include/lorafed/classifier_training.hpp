#pragma once
// Mini-batch training and evaluation of a classifier with cross-entropy: the
// loop every classification model backend needs (mlp, cnnzoo).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "lorafed/data/examples.hpp"
#include "lorafed/export.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed {

// Inputs (a batch of rows of Examples::inputs) to logits.
using Forward = std::function<at::Tensor(const at::Tensor&)>;

// Minimises cross-entropy over `parameters` (all others must not require
// gradients) with the configured optimizer, for options.local_steps steps
// or options.local_epochs epochs of shuffled mini-batches. The shuffle is
// drawn from `seed`, so a run is reproducible. The parameters no longer
// require gradients afterwards, and hold none. Throws lorafed::Error when
// the loss diverges.
LORAFED_API TrainReport train_classifier(const Forward& forward, std::vector<at::Tensor> parameters,
                                         const data::Examples& examples,
                                         const TrainOptions& options, std::uint64_t seed);

// Mean cross-entropy and "accuracy" over `examples`, without gradients.
LORAFED_API EvalReport evaluate_classifier(const Forward& forward, const data::Examples& examples,
                                           std::int64_t batch_size = 1000);

}  // namespace lorafed
