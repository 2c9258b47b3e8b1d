#include "mlp_data.hpp"

#include <algorithm>

#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed::mlp {
namespace {

constexpr std::int64_t kClasses = 10;

Examples gather(const data::LabeledImages& split, const std::vector<std::int64_t>& indices) {
  return data::select_examples(split, indices);
}

}  // namespace

RoleData load_role_data(const DataOptions& options, const ModelContext& context) {
  const auto dataset = data::load_fashion_mnist(options.data_dir);
  RoleData role;
  if (context.role == ModelContext::Role::kServer) {
    const std::int64_t n =
        options.eval_examples > 0
            ? std::min<std::int64_t>(options.eval_examples, dataset->test.labels.size(0))
            : dataset->test.labels.size(0);
    std::vector<std::int64_t> indices(n);
    for (std::int64_t i = 0; i < n; ++i) indices[i] = i;
    role.test = gather(dataset->test, indices);
    return role;
  }
  const std::int64_t private_count = dataset->train.labels.size(0) - options.public_examples;
  const std::vector<std::int64_t> train_labels = data::label_list(dataset->train, private_count);
  const std::vector<std::int64_t> test_labels =
      data::label_list(dataset->test, dataset->test.labels.size(0));

  std::vector<std::vector<std::int64_t>> train_parts;
  data::LabelMix mix;
  for (std::uint64_t attempt = 0;; ++attempt) {
    mix = options.partition == "iid"
              ? data::iid_mix(context.num_clients, kClasses)
              : data::dirichlet_mix(context.num_clients, kClasses, options.dirichlet_alpha,
                                    derive_seed(context.seed, {0x4d4958 /* MIX */, attempt}));
    train_parts =
        data::split_by_mix(train_labels, mix, derive_seed(context.seed, {0x545241 /* TRA */}));
    const auto smallest =
        std::min_element(train_parts.begin(), train_parts.end(),
                         [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (static_cast<std::int64_t>(smallest->size()) >= options.min_examples) break;
    if (attempt == 100 || options.partition == "iid") {
      throw ConfigError("mlp model: cannot give each of " + std::to_string(context.num_clients) +
                        " clients at least " + std::to_string(options.min_examples) +
                        " examples; use fewer clients or a larger dirichlet_alpha");
    }
  }
  const auto test_parts =
      data::split_by_mix(test_labels, mix, derive_seed(context.seed, {0x545354 /* TST */}));
  std::vector<std::int64_t> mine = train_parts.at(context.client_index);
  if (options.max_train_examples > 0 &&
      static_cast<std::int64_t>(mine.size()) > options.max_train_examples) {
    mine.resize(options.max_train_examples);
  }
  role.train = gather(dataset->train, mine);
  role.test = gather(dataset->test, test_parts.at(context.client_index));
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
  return gather(dataset->train, indices);
}

}  // namespace lorafed::mlp
