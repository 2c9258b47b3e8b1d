#pragma once
// The one mini-batch training loop every model backend runs: optimiser,
// shuffled batches, epochs or steps, gradient clipping, divergence checks,
// and the procedure's training hook (training_hook.hpp).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "lorafed/export.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/train_options.hpp"

namespace lorafed {

// The mean loss of one batch, given the indices (int64) of its examples.
using BatchLoss = std::function<at::Tensor(const at::Tensor& batch_indices)>;

// Minimises `loss` over `parameters` (all others must not require
// gradients) with the configured optimizer, for options.local_steps steps
// or options.local_epochs epochs of shuffled mini-batches of the
// `num_examples` examples. The shuffle is drawn from `seed`, so a run is
// reproducible. options.hook, when set, is called around every step with
// `parameters`, whose names it sees (training_hook.hpp). The parameters no
// longer require gradients afterwards, and hold none. Throws lorafed::Error
// when the loss diverges.
LORAFED_API TrainReport train_minibatches(const BatchLoss& loss, const NamedTensors& parameters,
                                          std::int64_t num_examples, const TrainOptions& options,
                                          std::uint64_t seed);

}  // namespace lorafed
