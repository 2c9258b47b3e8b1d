#include "src/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "lorafed/seed.hpp"

namespace lorafed {

std::vector<std::string> sample_clients(std::vector<std::string> client_ids, double fraction,
                                        std::int64_t min_clients, std::uint64_t seed, int round) {
  // The roster lists them sorted already; sorting 10,000 ids again cost more
  // than looking.
  if (!std::is_sorted(client_ids.begin(), client_ids.end())) {
    std::sort(client_ids.begin(), client_ids.end());
  }
  const auto n = static_cast<std::int64_t>(client_ids.size());
  const auto wanted = std::min<std::int64_t>(
      n, std::max<std::int64_t>(min_clients,
                                static_cast<std::int64_t>(std::ceil(fraction * n - 1e-9))));
  std::mt19937_64 rng(
      derive_seed(seed, {0x53414d50 /* "SAMP" */, static_cast<std::uint64_t>(round)}));
  // Partial Fisher-Yates: the first `wanted` positions are the sample.
  for (std::int64_t i = 0; i < wanted; ++i) {
    std::uniform_int_distribution<std::int64_t> pick(i, n - 1);
    std::swap(client_ids[i], client_ids[pick(rng)]);
  }
  client_ids.resize(wanted);
  std::sort(client_ids.begin(), client_ids.end());
  return client_ids;
}

}  // namespace lorafed
