// Clients in one process share one copy of a dataset and hold their
// partitions as rows of it (data::Examples::rows).
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/classifier_training.hpp"
#include "lorafed/data/fashion_mnist.hpp"
#include "plugins/models/cnnzoo/zoo_data.hpp"

using lorafed::data::Examples;

TEST_CASE("Fashion-MNIST's features are made once per process and shared") {
  const auto first = lorafed::data::fashion_mnist_features();
  const auto second = lorafed::data::fashion_mnist_features();
  CHECK(first.get() == second.get());
  CHECK(first->train.inputs.data_ptr() == second->train.inputs.data_ptr());
  CHECK(first->train.size() == 60000);
  CHECK(first->test.size() == 10000);
  // The same features select_examples() makes, row for row.
  const auto dataset = lorafed::data::load_fashion_mnist();
  const std::vector<std::int64_t> picked = {5, 17, 59999};
  const Examples copied = lorafed::data::select_examples(dataset->train, picked);
  Examples shared = first->train;
  shared.rows = at::tensor(picked, at::kLong);
  const Examples batch = shared.batch(at::arange(3, at::kLong));
  CHECK(at::equal(batch.inputs, copied.inputs));
  CHECK(at::equal(batch.labels, copied.labels));
  // A partition as rows holds no copy of the inputs.
  CHECK(shared.inputs.data_ptr() == first->train.inputs.data_ptr());
}

TEST_CASE("Examples given as rows behave as the same examples copied out") {
  const at::Tensor inputs = at::randn({50, 4}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor labels = at::randint(0, 3, {50}, at::kLong);
  const std::vector<std::int64_t> rows = {3, 9, 10, 11, 20, 21, 22, 30, 41, 49, 0, 7};
  const at::Tensor index = at::tensor(rows, at::kLong);
  const Examples as_rows{inputs, labels, index};
  const Examples copied{inputs.index_select(0, index), labels.index_select(0, index), {}};
  CHECK(as_rows.size() == 12);
  CHECK(Examples{}.size() == 0);
  CHECK(at::equal(as_rows.range(2, 5).inputs, copied.inputs.slice(0, 2, 5)));
  CHECK(as_rows.range(2, 5).size() == 3);

  // Training and evaluation see the same examples in the same order.
  auto train = [](const Examples& examples) {
    at::Tensor weight = at::zeros({3, 4});
    lorafed::TrainOptions options;
    options.batch_size = 5;
    options.local_epochs = 2;
    options.learning_rate = 0.1;
    const auto forward = [&weight](const at::Tensor& x) { return at::matmul(x, weight.t()); };
    const lorafed::TrainReport report =
        lorafed::train_classifier(forward, {{"weight", weight}}, examples, options, 11);
    const lorafed::EvalReport eval = lorafed::evaluate_classifier(forward, examples, 4);
    return std::tuple{weight, report.steps, report.examples_seen, eval.loss};
  };
  const auto [weight_rows, steps_rows, seen_rows, loss_rows] = train(as_rows);
  const auto [weight_copied, steps_copied, seen_copied, loss_copied] = train(copied);
  CHECK(steps_rows == 6);  // 2 epochs of ceil(12 / 5) batches
  CHECK(seen_rows == 24);
  CHECK(steps_rows == steps_copied);
  CHECK(seen_rows == seen_copied);
  CHECK(at::equal(weight_rows, weight_copied));
  CHECK(loss_rows == loss_copied);
}

TEST_CASE("cnnzoo clients hold their partitions as rows of one shared copy") {
  lorafed::cnnzoo::DataOptions options;
  options.data_dir = lorafed::data::kFashionMnistDir;
  const auto client = [&](std::int64_t index) {
    return lorafed::cnnzoo::load_client_data(
        options, lorafed::ModelContext{lorafed::ModelContext::Role::kClient, index, 4, 3, {}});
  };
  const lorafed::cnnzoo::ClientData first = client(0);
  const lorafed::cnnzoo::ClientData second = client(1);
  CHECK(first.train.inputs.data_ptr() == second.train.inputs.data_ptr());
  CHECK(first.test.inputs.data_ptr() == second.test.inputs.data_ptr());
  CHECK(first.train.inputs.size(0) == 60000);
  CHECK(first.train.size() == options.max_train_examples);
  CHECK_FALSE(at::equal(first.train.rows, second.train.rows));
  // Two classes per client: its examples are of two labels only.
  const at::Tensor labels = first.train.batch(at::arange(first.train.size(), at::kLong)).labels;
  CHECK(std::get<0>(at::_unique(labels)).numel() == 2);
}
