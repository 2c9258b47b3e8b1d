// The [sweep] grid (docs/outputs.md §Sweeps): axes, named axes, skips, order.
#include <catch2/catch.hpp>

#include <fstream>

#include "lorafed/error.hpp"
#include "src/sweep/sweep_plan.hpp"

using lorafed::plan_sweep;
using lorafed::SweepPlan;
namespace fs = std::filesystem;

namespace {

const char* const kBase = R"(
[federation]
rounds = 2
num_clients = 4
output_dir = "runs/base"

[strategy]
name = "fedavg"

[model]
name = "mlp"
)";

fs::path write_config(const std::string& name, const std::string& sweep) {
  const fs::path path = fs::temp_directory_path() / ("lorafed-sweep-" + name + ".toml");
  std::ofstream(path) << kBase << sweep;
  return path;
}

std::vector<std::string> names(const SweepPlan& plan) {
  std::vector<std::string> result;
  for (const auto& point : plan.points) result.push_back(point.name);
  return result;
}

}  // namespace

TEST_CASE("a sweep's grid is the product of its axes, seeds fastest", "[sweep]") {
  const SweepPlan plan = plan_sweep(write_config("product", R"(
[sweep]
seeds = [1, 2]
order = ["strategy.name", "ranks"]

[sweep.grid]
strategy.name = ["fedhl", "flexlora"]

[sweep.grid.ranks]
homogeneous = { lora.rank = 8 }
uniform = { "lora.rank_distribution" = "uniform", "lora.rank_set" = [2, 4] }
)"),
                                    {});
  CHECK(plan.axes == std::vector<std::string>{"strategy.name", "ranks"});
  CHECK(names(plan) ==
        std::vector<std::string>{"fedhl-homogeneous-seed1", "fedhl-homogeneous-seed2",
                                 "fedhl-uniform-seed1", "fedhl-uniform-seed2",
                                 "flexlora-homogeneous-seed1", "flexlora-homogeneous-seed2",
                                 "flexlora-uniform-seed1", "flexlora-uniform-seed2"});
  CHECK(plan.output_dir == "runs/base");
  const auto& point = plan.points[3];  // fedhl, uniform, seed 2
  CHECK(point.group == "fedhl, uniform");
  CHECK(point.seed == 2);
  const std::string& text = point.config_toml;
  CHECK(text.find("name = 'fedhl'") != std::string::npos);
  CHECK(text.find("rank_distribution = 'uniform'") != std::string::npos);
  CHECK(text.find("rank_set = [ 2, 4 ]") != std::string::npos);
  CHECK(text.find("seed = 2") != std::string::npos);
  CHECK(text.find("output_dir = 'runs/base/fedhl-uniform-seed2'") != std::string::npos);
  CHECK(text.find("[sweep]") == std::string::npos);
  CHECK(text.find("rank = 8") == std::string::npos);
}

TEST_CASE("skip entries leave matching points out", "[sweep]") {
  const SweepPlan plan = plan_sweep(write_config("skip", R"(
[sweep]
order = ["strategy.name"]

[sweep.grid]
"strategy.name" = ["fedavg", "fedhl"]
"train.learning_rate" = [0.01, 0.1]

[[sweep.skip]]
"strategy.name" = "fedavg"
"train.learning_rate" = [0.1]
)"),
                                    {"federation.seed=7"}, "elsewhere");
  CHECK(names(plan) ==
        std::vector<std::string>{"fedavg-0.01-seed7", "fedhl-0.01-seed7", "fedhl-0.1-seed7"});
  CHECK(plan.output_dir == "elsewhere");
}

TEST_CASE("a malformed sweep is refused with the reason", "[sweep]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(plan_sweep(write_config("none", ""), {}), Contains("has no [sweep] table"));
  CHECK_THROWS_WITH(plan_sweep(write_config("unknown", "[sweep]\nseed = [1]\n"), {}),
                    Contains("unknown key 'seed'"));
  CHECK_THROWS_WITH(plan_sweep(write_config("twice", R"(
[sweep.grid]
"lora.rank" = [2, 4]
[sweep.grid.ranks]
small = { lora.rank = 2 }
)"),
                               {}),
                    Contains("two axes set 'lora.rank'"));
  CHECK_THROWS_WITH(plan_sweep(write_config("empty", "[sweep.grid]\n\"lora.rank\" = []\n"), {}),
                    Contains("lists no values"));
  CHECK_THROWS_WITH(plan_sweep(write_config("all-skipped", R"(
[sweep.grid]
"lora.rank" = [2]
[[sweep.skip]]
"lora.rank" = 2
)"),
                               {}),
                    Contains("every point of the grid is skipped"));
  CHECK_THROWS_WITH(plan_sweep(write_config("bad-skip", R"(
[sweep.grid]
"lora.rank" = [2]
[[sweep.skip]]
strategy = "x"
)"),
                               {}),
                    Contains("names 'strategy', which is no axis"));
  CHECK_THROWS_AS(plan_sweep(write_config("none2", ""), {}), lorafed::ConfigError);
}
