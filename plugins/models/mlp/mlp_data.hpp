#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"

namespace lorafed::mlp {

// How the `mlp` backend carves Fashion-MNIST (see README.md).
struct DataOptions {
  std::string data_dir;
  std::string partition = "dirichlet";  // "iid" or "dirichlet"
  double dirichlet_alpha = 0.5;
  std::int64_t public_examples = 2000;  // the train set's tail, kept for pretraining
  std::int64_t max_train_examples = 0;  // per client; 0: all of its partition
  std::int64_t eval_examples = 0;       // server test subset; 0: all 10,000
  std::int64_t min_examples =
      20;  // min_client_examples: a Dirichlet draw giving a client fewer is redrawn
};

using data::Examples;

// The role's data: a client's train partition and its test split (same label
// mix), or the server's test set (train left empty). Both are rows of the
// process's one copy of Fashion-MNIST's features, which `source` keeps.
struct RoleData {
  Examples train;
  Examples test;
  std::shared_ptr<const void> source;
};
RoleData load_role_data(const DataOptions& options, const ModelContext& context);

// The public slice used to pretrain the base: the train set's last
// `public_examples`, restricted to `classes`.
Examples public_slice(const DataOptions& options, const std::vector<std::int64_t>& classes);

}  // namespace lorafed::mlp
