#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "lorafed/model_backend.hpp"

namespace lorafed::linear {

// y = (W0 + ΔW*) x + noise, with ΔW* of full rank (docs/algorithms.md
// §Synthetic linear task). Clients see non-IID inputs: each stretches a
// different random half of the input coordinates.
struct TaskOptions {
  std::int64_t in_features = 16;
  std::int64_t out_features = 16;
  double spectrum_decay = 0.5;  // σ_j = (j + 1)^(-decay)
  double noise = 0.01;
  double input_skew = 0.2;  // scale of the coordinates a client sees little of
  std::int64_t examples_per_client = 256;
  std::int64_t test_examples = 1024;
  std::uint64_t task_seed = 0;
};

struct Task {
  torch::Tensor base;    // W0, out × in
  torch::Tensor target;  // ΔW*, out × in, full rank
};

Task make_task(const TaskOptions& options);

struct Examples {
  torch::Tensor inputs;   // N × in
  torch::Tensor targets;  // N × out
};

// A client's train and test examples (same input distribution), or, for the
// server, isotropic test inputs.
struct RoleData {
  Examples train;
  Examples test;
};
RoleData make_role_data(const TaskOptions& options, const Task& task, const ModelContext& context);

}  // namespace lorafed::linear
