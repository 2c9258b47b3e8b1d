#include "zoo_data.hpp"

#include <ATen/ATen.h>

#include <map>
#include <mutex>

#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed::cnnzoo {

namespace {

// What every client of a process reads: the features once, and their labels
// as lists for the partitioner.
struct Shared {
  std::shared_ptr<const data::FashionMnistFeatures> features;
  std::vector<std::int64_t> train_labels;
  std::vector<std::int64_t> test_labels;
};

std::shared_ptr<const Shared> shared_data(const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::map<std::filesystem::path, std::weak_ptr<const Shared>> cache;
  std::lock_guard lock(mutex);
  if (auto cached = cache[dir].lock()) return cached;
  auto shared = std::make_shared<Shared>();
  shared->features = data::fashion_mnist_features(dir);
  const auto labels = [](const data::Examples& examples) {
    const at::Tensor contiguous = examples.labels.contiguous();
    const auto* first = contiguous.data_ptr<std::int64_t>();
    return std::vector<std::int64_t>(first, first + contiguous.size(0));
  };
  shared->train_labels = labels(shared->features->train);
  shared->test_labels = labels(shared->features->test);
  cache[dir] = shared;
  return shared;
}

}  // namespace

ClientData load_client_data(const DataOptions& options, const ModelContext& context) {
  const auto shared = shared_data(options.data_dir);
  data::LabelMix mix;
  if (options.partition == "classes") {
    mix = data::classes_per_client_mix(context.num_clients, data::kFashionMnistClasses,
                                       options.classes_per_client,
                                       derive_seed(context.seed, {0x4d4958 /* MIX */}));
  } else if (options.partition == "dirichlet") {
    mix = data::dirichlet_mix(context.num_clients, data::kFashionMnistClasses,
                              options.dirichlet_alpha,
                              derive_seed(context.seed, {0x4d4958 /* MIX */}));
  } else {
    mix = data::iid_mix(context.num_clients, data::kFashionMnistClasses);
  }
  const auto split =
      data::client_split(shared->train_labels, shared->test_labels, mix, context.client_index,
                         options.max_train_examples, options.max_test_examples,
                         derive_seed(context.seed, {0x53504c54 /* SPLT */}));
  if (split.train.empty()) {
    throw ConfigError("cnnzoo model: client " + std::to_string(context.client_index) +
                      " got no training examples from the partition; use fewer clients or "
                      "another partition");
  }
  ClientData client;
  client.train = shared->features->train;
  client.train.rows = at::tensor(split.train, at::kLong);
  client.test = shared->features->test;
  client.test.rows = at::tensor(split.test, at::kLong);
  client.source = shared;
  return client;
}

}  // namespace lorafed::cnnzoo
