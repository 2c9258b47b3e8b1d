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
