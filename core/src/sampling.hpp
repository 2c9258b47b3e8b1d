#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lorafed {

// Picks max(min_clients, ceil(fraction · n)) of `client_ids` (at most all),
// uniformly without replacement, seeded by (seed, round). The result is
// sorted, so the same seed samples the same clients in any deployment.
std::vector<std::string> sample_clients(std::vector<std::string> client_ids, double fraction,
                                        std::int64_t min_clients, std::uint64_t seed, int round);

}  // namespace lorafed
