#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"

namespace lorafed::cnnzoo {

// How the `cnnzoo` backend carves Fashion-MNIST among clients (README.md).
struct DataOptions {
  std::string data_dir;
  std::string partition = "classes";  // "classes", "dirichlet" or "iid"
  std::int64_t classes_per_client = 2;
  double dirichlet_alpha = 0.5;
  std::int64_t max_train_examples = 300;  // per client; 0: all of its partition
  std::int64_t max_test_examples = 200;   // per client; 0: all of its split
};

// A client's training partition and its test split, which has the same
// label mix (personalised evaluation). Seeded by the run's seed. Both are
// rows of the process's one copy of Fashion-MNIST's features
// (data::Examples::rows), which `source` keeps alive.
struct ClientData {
  data::Examples train;
  data::Examples test;
  std::shared_ptr<const void> source;
};
ClientData load_client_data(const DataOptions& options, const ModelContext& context);

}  // namespace lorafed::cnnzoo
