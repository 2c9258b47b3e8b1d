#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lorafed/export.hpp"

namespace lorafed::data {

// How each class's examples are shared among clients: share[client][class],
// each class's column summing to 1. Applying the same mix to a train and a
// test set gives every client the same label mix in both (personalised
// evaluation needs that).
struct LabelMix {
  std::int64_t num_clients = 0;
  std::int64_t num_classes = 0;
  std::vector<std::vector<double>> share;
};

// Every client the same share of every class (IID).
LORAFED_API LabelMix iid_mix(std::int64_t num_clients, std::int64_t num_classes);
// Per class, shares over clients drawn from Dirichlet(alpha): small alpha,
// strong label skew. Seeded.
LORAFED_API LabelMix dirichlet_mix(std::int64_t num_clients, std::int64_t num_classes, double alpha,
                                   std::uint64_t seed);

// Label skew by shards: each client holds `classes_per_client` distinct
// classes, dealt so every class is held about equally often, and a random
// weight for each (uniform in [0.1, 1)); a class's examples are shared among
// its holders in proportion to their weights. Seeded.
LORAFED_API LabelMix classes_per_client_mix(std::int64_t num_clients, std::int64_t num_classes,
                                            std::int64_t classes_per_client, std::uint64_t seed);

// Splits example indices by `mix`: each class's indices are shuffled (seeded)
// and cut into consecutive runs of the clients' shares. Every index of a
// class someone holds goes to exactly one client (a class whose shares are
// all zero is left out); each client's list is sorted.
LORAFED_API std::vector<std::vector<std::int64_t>> split_by_mix(
    std::span<const std::int64_t> labels, const LabelMix& mix, std::uint64_t seed);

// One client's share of a train and a test set cut by the same mix, so its
// test split has its training label mix (personalised evaluation). Each list
// is capped at its limit (0: no cap) by keeping a seeded random subset, which
// keeps the mix in expectation.
struct ClientSplit {
  std::vector<std::int64_t> train;
  std::vector<std::int64_t> test;
};
LORAFED_API ClientSplit client_split(std::span<const std::int64_t> train_labels,
                                     std::span<const std::int64_t> test_labels, const LabelMix& mix,
                                     std::int64_t client, std::int64_t max_train,
                                     std::int64_t max_test, std::uint64_t seed);

}  // namespace lorafed::data
