#pragma once

#include <cstdint>
#include <vector>

#include "lorafed/config.hpp"

namespace lorafed {

// Each client's LoRA rank from the `[lora]` table (docs/configuration.md):
//   rank = 8                               every client the same
//   ranks = [2, 4, 8, ...]                 one per client
//   rank_distribution = "uniform"          uniform over rank_set
//   rank_distribution = "heavy_tail"       heavy_tail_share of the clients
//                                          at the smallest rank of rank_set,
//                                          the rest uniform over the others
//   rank_distribution = "normal"           N(rank_mean, rank_std) rounded to
//                                          the nearest rank of rank_set
// Distributions are drawn from `seed`, so every process agrees.
std::vector<std::int64_t> assign_ranks(const ConfigTable& lora, std::int64_t num_clients,
                                       std::uint64_t seed);

}  // namespace lorafed
