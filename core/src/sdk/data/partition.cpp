#include "lorafed/data/partition.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "lorafed/error.hpp"

namespace lorafed::data {

LabelMix iid_mix(std::int64_t num_clients, std::int64_t num_classes) {
  if (num_clients < 1 || num_classes < 1)
    throw Error("iid_mix needs at least one client and one class");
  LabelMix mix{num_clients, num_classes, {}};
  mix.share.assign(num_clients,
                   std::vector<double>(num_classes, 1.0 / static_cast<double>(num_clients)));
  return mix;
}

LabelMix dirichlet_mix(std::int64_t num_clients, std::int64_t num_classes, double alpha,
                       std::uint64_t seed) {
  if (!(alpha > 0))
    throw ConfigError("Dirichlet alpha must be positive, got " + std::to_string(alpha));
  if (num_clients < 1 || num_classes < 1)
    throw Error("dirichlet_mix needs at least one client and one class");
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gamma(alpha, 1.0);
  LabelMix mix{num_clients, num_classes, {}};
  mix.share.assign(num_clients, std::vector<double>(num_classes, 0.0));
  for (std::int64_t c = 0; c < num_classes; ++c) {
    double total = 0;
    for (std::int64_t k = 0; k < num_clients; ++k) total += mix.share[k][c] = gamma(rng);
    if (total <= 0) {  // every draw underflowed: give the class to one client
      mix.share[std::uniform_int_distribution<std::int64_t>(0, num_clients - 1)(rng)][c] = 1;
      continue;
    }
    for (std::int64_t k = 0; k < num_clients; ++k) mix.share[k][c] /= total;
  }
  return mix;
}

std::vector<std::vector<std::int64_t>> split_by_mix(std::span<const std::int64_t> labels,
                                                    const LabelMix& mix, std::uint64_t seed) {
  std::vector<std::vector<std::int64_t>> by_class(mix.num_classes);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= mix.num_classes) {
      throw Error("label " + std::to_string(labels[i]) + " outside the mix's " +
                  std::to_string(mix.num_classes) + " classes");
    }
    by_class[labels[i]].push_back(static_cast<std::int64_t>(i));
  }
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::int64_t>> parts(mix.num_clients);
  for (std::int64_t c = 0; c < mix.num_classes; ++c) {
    std::vector<std::int64_t>& indices = by_class[c];
    std::shuffle(indices.begin(), indices.end(), rng);
    const double n = static_cast<double>(indices.size());
    double cumulative = 0;
    std::size_t begin = 0;
    for (std::int64_t k = 0; k < mix.num_clients; ++k) {
      cumulative += mix.share[k][c];
      // The last client takes the remainder, so rounding loses no index.
      const std::size_t end =
          k + 1 == mix.num_clients
              ? indices.size()
              : std::min(indices.size(), static_cast<std::size_t>(std::llround(cumulative * n)));
      for (std::size_t i = begin; i < std::max(begin, end); ++i) parts[k].push_back(indices[i]);
      begin = std::max(begin, end);
    }
  }
  for (auto& part : parts) std::sort(part.begin(), part.end());
  return parts;
}

}  // namespace lorafed::data
