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

LabelMix classes_per_client_mix(std::int64_t num_clients, std::int64_t num_classes,
                                std::int64_t classes_per_client, std::uint64_t seed) {
  if (num_clients < 1 || num_classes < 1)
    throw Error("classes_per_client_mix needs at least one client and one class");
  if (classes_per_client < 1 || classes_per_client > num_classes) {
    throw ConfigError("classes per client must be between 1 and " + std::to_string(num_classes) +
                      ", got " + std::to_string(classes_per_client));
  }
  std::mt19937_64 rng(seed);
  // Deal classes from a deck of shuffled copies of 0..C-1, so that every
  // class is held about equally often; a client skips a class it already has.
  std::vector<std::int64_t> deck;
  auto add_shuffled_copy = [&] {
    std::vector<std::int64_t> copy(num_classes);
    for (std::int64_t c = 0; c < num_classes; ++c) copy[c] = c;
    std::shuffle(copy.begin(), copy.end(), rng);
    deck.insert(deck.end(), copy.begin(), copy.end());
  };
  std::uniform_real_distribution<double> draw(0.1, 1.0);
  LabelMix mix{num_clients, num_classes, {}};
  mix.share.assign(num_clients, std::vector<double>(num_classes, 0.0));
  for (std::int64_t k = 0; k < num_clients; ++k) {
    for (std::int64_t held = 0; held < classes_per_client; ++held) {
      auto not_held = [&row = mix.share[k]](std::int64_t c) { return row[c] == 0; };
      auto next = std::find_if(deck.begin(), deck.end(), not_held);
      while (next == deck.end()) {
        add_shuffled_copy();
        next = std::find_if(deck.begin(), deck.end(), not_held);
      }
      mix.share[k][*next] = draw(rng);  // this client's random weight for the class
      deck.erase(next);
    }
  }
  for (std::int64_t c = 0; c < num_classes; ++c) {
    double total = 0;
    for (std::int64_t k = 0; k < num_clients; ++k) total += mix.share[k][c];
    if (total == 0) continue;  // nobody holds the class
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
    // The last client holding the class takes the remainder, so rounding
    // loses no index; a class nobody holds is left out.
    std::int64_t last_holder = -1;
    for (std::int64_t k = 0; k < mix.num_clients; ++k) {
      if (mix.share[k][c] > 0) last_holder = k;
    }
    if (last_holder < 0) continue;
    const double n = static_cast<double>(indices.size());
    double cumulative = 0;
    std::size_t begin = 0;
    for (std::int64_t k = 0; k <= last_holder; ++k) {
      cumulative += mix.share[k][c];
      const std::size_t end =
          k == last_holder
              ? indices.size()
              : std::min(indices.size(), static_cast<std::size_t>(std::llround(cumulative * n)));
      for (std::size_t i = begin; i < std::max(begin, end); ++i) parts[k].push_back(indices[i]);
      begin = std::max(begin, end);
    }
  }
  for (auto& part : parts) std::sort(part.begin(), part.end());
  return parts;
}

namespace {

std::vector<std::int64_t> capped(std::vector<std::int64_t> indices, std::int64_t limit,
                                 std::uint64_t seed) {
  if (limit <= 0 || static_cast<std::int64_t>(indices.size()) <= limit) return indices;
  std::mt19937_64 rng(seed);
  std::shuffle(indices.begin(), indices.end(), rng);
  indices.resize(static_cast<std::size_t>(limit));
  std::sort(indices.begin(), indices.end());
  return indices;
}

}  // namespace

ClientSplit client_split(std::span<const std::int64_t> train_labels,
                         std::span<const std::int64_t> test_labels, const LabelMix& mix,
                         std::int64_t client, std::int64_t max_train, std::int64_t max_test,
                         std::uint64_t seed) {
  if (client < 0 || client >= mix.num_clients) {
    throw Error("client " + std::to_string(client) + " outside the mix's " +
                std::to_string(mix.num_clients) + " clients");
  }
  std::mt19937_64 seeds(seed);
  const std::uint64_t train_seed = seeds(), test_seed = seeds(), cap_seed = seeds();
  ClientSplit split;
  split.train = capped(split_by_mix(train_labels, mix, train_seed).at(client), max_train, cap_seed);
  split.test = capped(split_by_mix(test_labels, mix, test_seed).at(client), max_test, cap_seed + 1);
  return split;
}

}  // namespace lorafed::data
