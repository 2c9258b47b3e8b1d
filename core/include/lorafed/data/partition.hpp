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

// Splits example indices by `mix`: each class's indices are shuffled (seeded)
// and cut into consecutive runs of the clients' shares. Every index goes to
// exactly one client; each client's list is sorted.
LORAFED_API std::vector<std::vector<std::int64_t>> split_by_mix(
    std::span<const std::int64_t> labels, const LabelMix& mix, std::uint64_t seed);

}  // namespace lorafed::data
