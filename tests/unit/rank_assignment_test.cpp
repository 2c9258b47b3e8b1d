#include <catch2/catch.hpp>

#include "lorafed/error.hpp"
#include "src/rank_assignment.hpp"

using lorafed::assign_ranks;
using lorafed::ConfigTable;

namespace {
std::vector<std::int64_t> ranks_for(const std::string& text, std::int64_t clients,
                                    std::uint64_t seed = 1) {
  return assign_ranks(ConfigTable::parse_string("[lora]\n" + text, "r.toml").section("lora"),
                      clients, seed);
}
}  // namespace

TEST_CASE("ranks come from one rank, a list, or a seeded distribution", "[ranks]") {
  CHECK(ranks_for("rank = 4", 3) == std::vector<std::int64_t>{4, 4, 4});
  CHECK(ranks_for("ranks = [2, 8, 4]", 3) == std::vector<std::int64_t>{2, 8, 4});
  const auto uniform =
      ranks_for("rank_distribution = \"uniform\"\nrank_set = [2, 4, 8, 16, 32]", 500);
  for (std::int64_t r : {2, 4, 8, 16, 32}) {
    const auto count = std::count(uniform.begin(), uniform.end(), r);
    CHECK(count > 60);
    CHECK(count < 140);
  }
  CHECK(uniform == ranks_for("rank_distribution = \"uniform\"\nrank_set = [2, 4, 8, 16, 32]", 500));
  CHECK(uniform !=
        ranks_for("rank_distribution = \"uniform\"\nrank_set = [2, 4, 8, 16, 32]", 500, 2));
}

TEST_CASE("heavy_tail puts the configured share of clients at the smallest rank", "[ranks]") {
  const auto ranks = ranks_for(
      "rank_distribution = \"heavy_tail\"\nrank_set = [2, 8, 32]\nheavy_tail_share = 0.8", 10);
  CHECK(std::count(ranks.begin(), ranks.end(), 2) == 8);
}

TEST_CASE("normal rounds draws to the nearest rank of the set", "[ranks]") {
  const auto ranks = ranks_for(
      "rank_distribution = \"normal\"\nrank_set = [4, 8, 16]\nrank_mean = 8.0\nrank_std = 0.5", 50);
  CHECK(std::count(ranks.begin(), ranks.end(), 8) == 50);
}

TEST_CASE("bad rank configurations are errors naming the key", "[ranks]") {
  CHECK_THROWS_WITH(ranks_for("ranks = [2, 4]", 3),
                    Catch::Matchers::Contains("one rank per client"));
  CHECK_THROWS_WITH(ranks_for("rank_distribution = \"zipf\"\nrank_set = [2]", 3),
                    Catch::Matchers::Contains("rank_distribution"));
  CHECK_THROWS_WITH(ranks_for("rank_distribution = \"uniform\"", 3),
                    Catch::Matchers::Contains("rank_set"));
  CHECK_THROWS_WITH(ranks_for("ranks = [2, 4]\nrank_distribution = \"uniform\"\nrank_set = [2]", 2),
                    Catch::Matchers::Contains("exclude each other"));
}
