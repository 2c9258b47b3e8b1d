#include "src/rank_assignment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "lorafed/seed.hpp"

namespace lorafed {

std::vector<std::int64_t> assign_ranks(const ConfigTable& lora, std::int64_t num_clients,
                                       std::uint64_t seed) {
  const std::int64_t rank = lora.get<std::int64_t>("rank", 8);
  if (rank < 1) throw_config_error(lora, "rank", "must be at least 1, got " + std::to_string(rank));
  const auto explicit_ranks = lora.find<std::vector<std::int64_t>>("ranks");
  const auto distribution = lora.find<std::string>("rank_distribution");
  if (explicit_ranks && distribution) {
    throw_config_error(lora, "ranks", "and rank_distribution exclude each other: keep one");
  }
  if (explicit_ranks) {
    if (static_cast<std::int64_t>(explicit_ranks->size()) != num_clients) {
      throw_config_error(lora, "ranks",
                         "must list one rank per client (" + std::to_string(num_clients) +
                             "), got " + std::to_string(explicit_ranks->size()));
    }
    if (*std::min_element(explicit_ranks->begin(), explicit_ranks->end()) < 1) {
      throw_config_error(lora, "ranks", "must all be at least 1");
    }
    return *explicit_ranks;
  }
  if (!distribution) return std::vector<std::int64_t>(num_clients, rank);

  std::vector<std::int64_t> set = lora.require<std::vector<std::int64_t>>("rank_set");
  if (set.empty() || *std::min_element(set.begin(), set.end()) < 1) {
    throw_config_error(lora, "rank_set", "must list ranks of at least 1");
  }
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  std::mt19937_64 rng(derive_seed(seed, {0x52414e4b /* RANK */}));
  std::vector<std::int64_t> ranks;
  if (*distribution == "uniform") {
    std::uniform_int_distribution<std::size_t> pick(0, set.size() - 1);
    for (std::int64_t i = 0; i < num_clients; ++i) ranks.push_back(set[pick(rng)]);
  } else if (*distribution == "heavy_tail") {
    const double share = lora.get<double>("heavy_tail_share", 0.8);
    if (!(share >= 0 && share <= 1))
      throw_config_error(lora, "heavy_tail_share",
                         fmt::format("must be a number in [0, 1], got {:g}", share));
    const auto smallest =
        static_cast<std::int64_t>(std::llround(share * static_cast<double>(num_clients)));
    std::uniform_int_distribution<std::size_t> pick(set.size() > 1 ? 1 : 0, set.size() - 1);
    for (std::int64_t i = 0; i < num_clients; ++i)
      ranks.push_back(i < smallest ? set.front() : set[pick(rng)]);
    std::shuffle(ranks.begin(), ranks.end(), rng);  // which clients are small is random too
  } else if (*distribution == "normal") {
    const double mean = lora.require<double>("rank_mean");
    if (!std::isfinite(mean)) {
      throw_config_error(lora, "rank_mean", fmt::format("must be a finite number, got {:g}", mean));
    }
    const double deviation = lora.get<double>("rank_std", 1.0);
    if (!(deviation > 0 && std::isfinite(deviation))) {
      throw_config_error(lora, "rank_std",
                         fmt::format("must be a finite number in (0, inf), got {:g}", deviation));
    }
    std::normal_distribution<double> draw(mean, deviation);
    for (std::int64_t i = 0; i < num_clients; ++i) {
      const double value = draw(rng);
      ranks.push_back(
          *std::min_element(set.begin(), set.end(), [&](std::int64_t x, std::int64_t y) {
            return std::abs(static_cast<double>(x) - value) <
                   std::abs(static_cast<double>(y) - value);
          }));
    }
  } else {
    throw_config_error(
        lora, "rank_distribution",
        "must be \"uniform\", \"heavy_tail\" or \"normal\", got \"" + *distribution + "\"");
  }
  return ranks;
}

}  // namespace lorafed
