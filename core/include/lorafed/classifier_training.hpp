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
#include "lorafed/named_tensors.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed {

// Inputs (a batch of rows of Examples::inputs) to logits.
using Forward = std::function<at::Tensor(const at::Tensor&)>;

// Minimises cross-entropy over `parameters` with train_minibatches
// (training_loop.hpp): the configured optimizer, steps or epochs of
// shuffled mini-batches drawn from `seed`, and options.hook. Name the
// parameters as training_hook.hpp says, so that hooks find them.
LORAFED_API TrainReport train_classifier(const Forward& forward, const NamedTensors& parameters,
                                         const data::Examples& examples,
                                         const TrainOptions& options, std::uint64_t seed);

// Mean cross-entropy and "accuracy" over `examples`, without gradients.
LORAFED_API EvalReport evaluate_classifier(const Forward& forward, const data::Examples& examples,
                                           std::int64_t batch_size = 1000);

}  // namespace lorafed
