#include "zoo_data.hpp"

#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed::cnnzoo {
constexpr std::int64_t kClasses = 10;

ClientData load_client_data(const DataOptions& options, const ModelContext& context) {
  const auto dataset = data::load_fashion_mnist(options.data_dir);
  data::LabelMix mix;
  if (options.partition == "classes") {
    mix = data::classes_per_client_mix(context.num_clients, kClasses, options.classes_per_client,
                                       derive_seed(context.seed, {0x4d4958 /* MIX */}));
  } else if (options.partition == "dirichlet") {
    mix = data::dirichlet_mix(context.num_clients, kClasses, options.dirichlet_alpha,
                              derive_seed(context.seed, {0x4d4958 /* MIX */}));
  } else {
    mix = data::iid_mix(context.num_clients, kClasses);
  }
  const auto split = data::client_split(
      data::label_list(dataset->train, dataset->train.labels.size(0)),
      data::label_list(dataset->test, dataset->test.labels.size(0)), mix, context.client_index,
      options.max_train_examples, options.max_test_examples,
      derive_seed(context.seed, {0x53504c54 /* SPLT */}));
  if (split.train.empty()) {
    throw ConfigError("cnnzoo model: client " + std::to_string(context.client_index) +
                      " got no training examples from the partition; use fewer clients or "
                      "another partition");
  }
  ClientData client;
  client.train = data::select_examples(dataset->train, split.train);
  client.test = data::select_examples(dataset->test, split.test);
  return client;
}

}  // namespace lorafed::cnnzoo
