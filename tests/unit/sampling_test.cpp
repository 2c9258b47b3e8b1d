#include <catch2/catch.hpp>

#include <set>

#include "src/sampling.hpp"

TEST_CASE("sampling takes ceil(fraction * n), at least the minimum, reproducibly", "[sampling]") {
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back("client-" + std::to_string(i));
  const auto first = lorafed::sample_clients(ids, 0.1, 2, 42, 3);
  CHECK(first.size() == 10);
  CHECK(std::set<std::string>(first.begin(), first.end()).size() == 10);
  CHECK(std::is_sorted(first.begin(), first.end()));
  CHECK(first == lorafed::sample_clients(ids, 0.1, 2, 42, 3));
  CHECK(first != lorafed::sample_clients(ids, 0.1, 2, 42, 4));
  CHECK(lorafed::sample_clients(ids, 0.01, 5, 42, 1).size() == 5);
  CHECK(lorafed::sample_clients(ids, 1.0, 1, 42, 1).size() == 100);
  std::vector<std::string> shuffled(ids.rbegin(), ids.rend());
  CHECK(lorafed::sample_clients(shuffled, 0.1, 2, 42, 3) ==
        first);  // order of registration does not matter
}

TEST_CASE("over many rounds every client gets sampled", "[sampling]") {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back("c" + std::to_string(i));
  std::set<std::string> seen;
  for (int round = 1; round <= 50; ++round) {
    for (const auto& id : lorafed::sample_clients(ids, 0.2, 1, 7, round)) seen.insert(id);
  }
  CHECK(seen.size() == ids.size());
}
