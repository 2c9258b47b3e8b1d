#include <catch2/catch.hpp>

#include <numeric>
#include <set>

#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"

using namespace lorafed::data;

namespace {
std::vector<std::int64_t> make_labels(std::int64_t per_class, std::int64_t classes) {
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < per_class * classes; ++i) labels.push_back(i % classes);
  return labels;
}
}  // namespace

TEST_CASE("split_by_mix assigns every index to exactly one client", "[partition]") {
  const auto labels = make_labels(500, 10);
  const auto parts = split_by_mix(labels, dirichlet_mix(7, 10, 0.5, 11), 3);
  REQUIRE(parts.size() == 7);
  std::vector<std::int64_t> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(labels.size());
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);
}

TEST_CASE("partitions are reproducible from the seed and change with it", "[partition]") {
  const auto labels = make_labels(300, 10);
  CHECK(split_by_mix(labels, dirichlet_mix(5, 10, 0.5, 1), 2) ==
        split_by_mix(labels, dirichlet_mix(5, 10, 0.5, 1), 2));
  CHECK(split_by_mix(labels, dirichlet_mix(5, 10, 0.5, 1), 2) !=
        split_by_mix(labels, dirichlet_mix(5, 10, 0.5, 9), 2));
}

TEST_CASE("iid gives every client about the same share of every class", "[partition]") {
  const auto labels = make_labels(1000, 10);
  const auto parts = split_by_mix(labels, iid_mix(4, 10), 5);
  for (const auto& part : parts) {
    CHECK(part.size() == 2500);
    std::vector<int> per_class(10, 0);
    for (std::int64_t index : part) ++per_class[labels[index]];
    for (int count : per_class) CHECK(count == 250);
  }
}

TEST_CASE("small dirichlet alpha skews labels far more than a large one", "[partition]") {
  const auto labels = make_labels(1000, 10);
  auto skew = [&](double alpha) {
    // Mean over clients of the largest class share in its partition.
    const auto parts = split_by_mix(labels, dirichlet_mix(10, 10, alpha, 4), 4);
    double total = 0;
    for (const auto& part : parts) {
      std::vector<double> per_class(10, 0);
      for (std::int64_t index : part) ++per_class[labels[index]];
      total +=
          *std::max_element(per_class.begin(), per_class.end()) / std::max<double>(1, part.size());
    }
    return total / 10;
  };
  CHECK(skew(0.1) > 0.5);
  CHECK(skew(100.0) < 0.2);
}

TEST_CASE("the same mix applied to train and test gives each client the same label mix",
          "[partition]") {
  const auto train = make_labels(2000, 10);
  const auto test = make_labels(400, 10);
  const LabelMix mix = dirichlet_mix(5, 10, 0.5, 8);
  const auto train_parts = split_by_mix(train, mix, 1);
  const auto test_parts = split_by_mix(test, mix, 2);
  for (std::size_t k = 0; k < 5; ++k) {
    for (std::int64_t c = 0; c < 10; ++c) {
      const double train_share = std::count_if(train_parts[k].begin(), train_parts[k].end(),
                                               [&](std::int64_t i) { return train[i] == c; }) /
                                 2000.0;
      const double test_share = std::count_if(test_parts[k].begin(), test_parts[k].end(),
                                              [&](std::int64_t i) { return test[i] == c; }) /
                                400.0;
      CHECK(train_share == Approx(mix.share[k][c]).margin(0.005));
      CHECK(test_share == Approx(mix.share[k][c]).margin(0.005));
    }
  }
}

TEST_CASE("a non-positive dirichlet alpha is a configuration error", "[partition]") {
  CHECK_THROWS_AS(dirichlet_mix(3, 10, 0.0, 1), lorafed::ConfigError);
}

TEST_CASE("classes_per_client_mix gives each client exactly k classes", "[partition]") {
  const LabelMix mix = classes_per_client_mix(10, 10, 2, 5);
  std::set<std::int64_t> held_by_someone;
  for (std::int64_t k = 0; k < 10; ++k) {
    std::int64_t held = 0;
    for (std::int64_t c = 0; c < 10; ++c) {
      if (mix.share[k][c] > 0) {
        ++held;
        held_by_someone.insert(c);
      }
    }
    CHECK(held == 2);
  }
  // 10 clients × 2 classes dealt from shuffled decks cover all 10 classes.
  CHECK(held_by_someone.size() == 10);
  for (std::int64_t c = 0; c < 10; ++c) {
    double column = 0;
    for (std::int64_t k = 0; k < 10; ++k) column += mix.share[k][c];
    CHECK(column == Approx(1.0));
  }
  // Seeded: the same seed deals the same mix, another seed another one.
  CHECK(classes_per_client_mix(10, 10, 2, 5).share == mix.share);
  CHECK(classes_per_client_mix(10, 10, 2, 6).share != mix.share);
  CHECK_THROWS_AS(classes_per_client_mix(10, 10, 11, 5), lorafed::ConfigError);
  CHECK_THROWS_AS(classes_per_client_mix(10, 10, 0, 5), lorafed::ConfigError);
}

TEST_CASE("a k-classes split gives clients only their classes, and drops unheld classes",
          "[partition]") {
  const auto labels = make_labels(100, 10);
  // 2 clients × 2 classes: six classes are held by nobody.
  const LabelMix mix = classes_per_client_mix(2, 10, 2, 9);
  const auto parts = split_by_mix(labels, mix, 1);
  std::size_t assigned = 0;
  for (std::int64_t k = 0; k < 2; ++k) {
    for (std::int64_t index : parts[k]) CHECK(mix.share[k][labels[index]] > 0);
    assigned += parts[k].size();
  }
  std::set<std::int64_t> held;
  for (std::int64_t k = 0; k < 2; ++k) {
    for (std::int64_t c = 0; c < 10; ++c) {
      if (mix.share[k][c] > 0) held.insert(c);
    }
  }
  CHECK(assigned == 100 * held.size());
}

TEST_CASE("client_split gives a client's test split its training label mix", "[partition]") {
  const auto train_labels = make_labels(600, 10);
  const auto test_labels = make_labels(100, 10);
  const LabelMix mix = classes_per_client_mix(10, 10, 2, 4);
  for (std::int64_t client = 0; client < 10; ++client) {
    const ClientSplit split = client_split(train_labels, test_labels, mix, client, 0, 0, 8);
    std::vector<double> train_count(10, 0), test_count(10, 0);
    for (std::int64_t index : split.train) ++train_count[train_labels[index]];
    for (std::int64_t index : split.test) ++test_count[test_labels[index]];
    for (std::int64_t c = 0; c < 10; ++c) {
      INFO("client " << client << " class " << c);
      CHECK((train_count[c] > 0) == (mix.share[client][c] > 0));
      CHECK((test_count[c] > 0) == (mix.share[client][c] > 0));
      // The same share of each class in both: 600 vs 100 examples per class.
      CHECK(train_count[c] / 600 == Approx(test_count[c] / 100).margin(0.011));
    }
  }
  // Caps keep a subset of the same client's examples.
  const ClientSplit full = client_split(train_labels, test_labels, mix, 0, 0, 0, 8);
  const ClientSplit capped = client_split(train_labels, test_labels, mix, 0, 50, 7, 8);
  CHECK(capped.train.size() == 50);
  CHECK(capped.test.size() == 7);
  CHECK(std::includes(full.train.begin(), full.train.end(), capped.train.begin(),
                      capped.train.end()));
}
