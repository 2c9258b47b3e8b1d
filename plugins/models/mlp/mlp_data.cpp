#include "mlp_data.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <random>

#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed::mlp {
namespace {

// Every client's train and test indices: computed once per process for a
// federation's options (not once per client, which made start-up quadratic
// in clients), and kept while a client of it exists.
struct Partition {
  std::vector<std::vector<std::int64_t>> train;
  std::vector<std::vector<std::int64_t>> test;
};

// The first `count` labels, as plain integers.
std::vector<std::int64_t> label_list(const at::Tensor& labels, std::int64_t count) {
  const at::Tensor first = labels.slice(0, 0, count).contiguous();
  return std::vector<std::int64_t>(first.data_ptr<std::int64_t>(),
                                   first.data_ptr<std::int64_t>() + first.size(0));
}

// IID: the examples 0 .. count-1 shuffled and dealt into `parts` shares whose
// sizes differ by at most one (splitting each class by equal shares rounds
// every class alike, and left some of thousands of clients nothing).
std::vector<std::vector<std::int64_t>> dealt(std::int64_t count, std::int64_t parts,
                                             std::uint64_t seed) {
  std::vector<std::int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<std::int64_t>> shares(parts);
  for (std::int64_t k = 0; k < parts; ++k) {
    shares[k].assign(order.begin() + k * count / parts, order.begin() + (k + 1) * count / parts);
    std::sort(shares[k].begin(), shares[k].end());
  }
  return shares;
}

std::shared_ptr<const Partition> make_partition(const DataOptions& options,
                                                const data::FashionMnistFeatures& dataset,
                                                const ModelContext& context) {
  const std::int64_t private_count = dataset.train.size() - options.public_examples;
  const std::vector<std::int64_t> train_labels = label_list(dataset.train.labels, private_count);
  const std::vector<std::int64_t> test_labels =
      label_list(dataset.test.labels, dataset.test.size());
  auto partition = std::make_shared<Partition>();
  if (options.partition == "iid") {
    const auto count = static_cast<std::int64_t>(train_labels.size());
    partition->train =
        dealt(count, context.num_clients, derive_seed(context.seed, {0x545241 /* TRA */}));
    partition->test = dealt(static_cast<std::int64_t>(test_labels.size()), context.num_clients,
                            derive_seed(context.seed, {0x545354 /* TST */}));
    if (count / context.num_clients < options.min_examples) {
      throw ConfigError("mlp model: " + std::to_string(count) + " training examples give each of " +
                        std::to_string(context.num_clients) + " clients " +
                        std::to_string(count / context.num_clients) +
                        ", fewer than min_client_examples (" +
                        std::to_string(options.min_examples) +
                        "); use fewer clients or a smaller min_client_examples");
    }
    return partition;
  }
  data::LabelMix mix;
  for (std::uint64_t attempt = 0;; ++attempt) {
    mix = options.partition == "iid"
              ? data::iid_mix(context.num_clients, data::kFashionMnistClasses)
              : data::dirichlet_mix(context.num_clients, data::kFashionMnistClasses,
                                    options.dirichlet_alpha,
                                    derive_seed(context.seed, {0x4d4958 /* MIX */, attempt}));
    partition->train =
        data::split_by_mix(train_labels, mix, derive_seed(context.seed, {0x545241 /* TRA */}));
    const auto smallest =
        std::min_element(partition->train.begin(), partition->train.end(),
                         [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (static_cast<std::int64_t>(smallest->size()) >= options.min_examples) break;
    if (attempt == 100) {
      throw ConfigError("mlp model: cannot give each of " + std::to_string(context.num_clients) +
                        " clients at least " + std::to_string(options.min_examples) + " of the " +
                        std::to_string(train_labels.size()) +
                        " training examples; use fewer clients, a larger dirichlet_alpha or a "
                        "smaller min_client_examples");
    }
  }
  partition->test =
      data::split_by_mix(test_labels, mix, derive_seed(context.seed, {0x545354 /* TST */}));
  return partition;
}

std::shared_ptr<const Partition> partition_for(const DataOptions& options,
                                               const data::FashionMnistFeatures& dataset,
                                               const ModelContext& context) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const Partition>> cache;
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}", options.data_dir, options.partition,
                                      options.dirichlet_alpha, options.public_examples,
                                      options.min_examples, context.num_clients, context.seed);
  std::lock_guard lock(mutex);
  if (auto cached = cache[key].lock()) return cached;
  auto partition = make_partition(options, dataset, context);
  cache[key] = partition;
  return partition;
}

at::Tensor rows_of(const std::vector<std::int64_t>& indices) {
  return at::tensor(indices, at::kLong);
}

// Keeps the shared features and the partition alive together.
struct Source {
  std::shared_ptr<const data::FashionMnistFeatures> features;
  std::shared_ptr<const Partition> partition;
};

}  // namespace

RoleData load_role_data(const DataOptions& options, const ModelContext& context) {
  const auto features = data::fashion_mnist_features(options.data_dir);
  RoleData role;
  if (context.role == ModelContext::Role::kServer) {
    const std::int64_t total = features->test.size();
    const std::int64_t n =
        options.eval_examples > 0 ? std::min<std::int64_t>(options.eval_examples, total) : total;
    // The first n rows, as views: evaluating them each round copies nothing.
    role.test =
        Examples{features->test.inputs.narrow(0, 0, n), features->test.labels.narrow(0, 0, n), {}};
    role.source = features;
    return role;
  }
  const auto partition = partition_for(options, *features, context);
  std::vector<std::int64_t> mine = partition->train.at(context.client_index);
  if (options.max_train_examples > 0 &&
      static_cast<std::int64_t>(mine.size()) > options.max_train_examples) {
    mine.resize(options.max_train_examples);
  }
  role.train = features->train;
  role.train.rows = rows_of(mine);
  role.test = features->test;
  role.test.rows = rows_of(partition->test.at(context.client_index));
  role.source = std::make_shared<const Source>(Source{features, partition});
  return role;
}

Examples public_slice(const DataOptions& options, const std::vector<std::int64_t>& classes) {
  const auto dataset = data::load_fashion_mnist(options.data_dir);
  const std::int64_t total = dataset->train.labels.size(0);
  std::vector<std::int64_t> indices;
  const std::vector<std::int64_t> labels = data::label_list(dataset->train, total);
  for (std::int64_t i = total - options.public_examples; i < total; ++i) {
    if (std::find(classes.begin(), classes.end(), labels[i]) != classes.end()) indices.push_back(i);
  }
  return data::select_examples(dataset->train, indices);
}

}  // namespace lorafed::mlp
