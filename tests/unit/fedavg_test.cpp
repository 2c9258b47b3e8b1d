#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/error.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

namespace {

std::shared_ptr<Strategy> make_fedavg(const std::string& config_text = "") {
  return make_strategy("fedavg", config_text);
}

}  // namespace

TEST_CASE("fedavg averages A and B separately, weighted by examples", "[fedavg]") {
  at::manual_seed(1);
  auto strategy = make_fedavg();
  strategy->initialize(StrategyContext{test_spec(), 16.0, 3});
  const std::vector<ClientInfo> clients = {{"a", 4, 100, "test-model"},
                                           {"b", 4, 300, "test-model"}};
  const auto instructions = strategy->configure_fit(1, clients);
  REQUIRE(instructions.size() == 2);
  // LoRA initialisation: B is zero, A is not.
  CHECK(instructions[0].adapter.layers.at("fc1").b.abs().sum().item<double>() == 0.0);
  CHECK(instructions[0].adapter.layers.at("fc1").a.abs().sum().item<double>() > 0.0);

  const std::vector<FitResult> results = {{"a", random_adapter(4), 100, {}},
                                          {"b", random_adapter(4), 300, {}}};
  strategy->aggregate_fit(1, results, {});

  // By hand: p = (0.25, 0.75); ΔW = s · (Σ p B)(Σ p A) with s = 16 / 4.
  const NamedTensors delta = strategy->global_delta();
  for (const TargetLayer& layer : test_spec().targets) {
    const auto& fa = results[0].adapter.layers.at(layer.name);
    const auto& fb = results[1].adapter.layers.at(layer.name);
    const at::Tensor a = 0.25 * fa.a + 0.75 * fb.a;
    const at::Tensor b = 0.25 * fa.b + 0.75 * fb.b;
    CHECK(at::allclose(delta.at(layer.name), 4.0 * at::matmul(b, a), 1e-5, 1e-5));
  }
  // And the next round sends exactly those averages.
  const auto next = strategy->configure_fit(2, clients);
  const auto& fa = results[0].adapter.layers.at("head");
  const auto& fb = results[1].adapter.layers.at("head");
  CHECK(at::allclose(next[1].adapter.layers.at("head").a, 0.25 * fa.a + 0.75 * fb.a));
  CHECK(at::allclose(next[1].adapter.layers.at("head").b, 0.25 * fa.b + 0.75 * fb.b));
}

TEST_CASE("fedavg with uniform weighting ignores example counts", "[fedavg]") {
  auto strategy = make_fedavg("weighting = \"uniform\"");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 3});
  const std::vector<ClientInfo> clients = {{"a", 2, 10, "m"}, {"b", 2, 1000, "m"}};
  strategy->configure_fit(1, clients);
  const std::vector<FitResult> results = {{"a", random_adapter(2), 10, {}},
                                          {"b", random_adapter(2), 1000, {}}};
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);
  CHECK(at::allclose(
      next[0].adapter.layers.at("fc1").a,
      0.5 * (results[0].adapter.layers.at("fc1").a + results[1].adapter.layers.at("fc1").a)));
}

TEST_CASE("fedavg refuses clients of different ranks with a configuration error", "[fedavg]") {
  auto strategy = make_fedavg();
  strategy->initialize(StrategyContext{test_spec(), 16.0, 3});
  const std::vector<ClientInfo> clients = {{"a", 4, 10, "m"}, {"b", 8, 10, "m"}};
  CHECK_THROWS_AS(strategy->configure_fit(1, clients), ConfigError);
  CHECK_THROWS_WITH(strategy->configure_fit(1, clients),
                    Catch::Matchers::Contains("one LoRA rank for every client") &&
                        Catch::Matchers::Contains("rank 8"));
}

TEST_CASE("fedavg rejects an unknown option", "[fedavg]") {
  CHECK_THROWS_WITH(make_fedavg("weighting = \"median\""), Catch::Matchers::Contains("weighting"));
}

TEST_CASE("fedavg state saves and restores the global adapter", "[fedavg]") {
  auto strategy = make_fedavg();
  strategy->initialize(StrategyContext{test_spec(), 16.0, 3});
  const std::vector<ClientInfo> clients = {{"a", 3, 10, "m"}};
  strategy->configure_fit(1, clients);
  strategy->aggregate_fit(1, std::vector<FitResult>{{"a", random_adapter(3), 10, {}}}, {});
  auto restored = make_fedavg();
  restored->initialize(StrategyContext{test_spec(), 16.0, 3});
  restored->load_state(strategy->state());
  for (const auto& [name, delta] : strategy->global_delta())
    CHECK(at::equal(restored->global_delta().at(name), delta));
}

TEST_CASE("fedavg's client evaluation sends every client the global adapter", "[fedavg]") {
  auto strategy = make_fedavg("evaluate_clients = true");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 1});
  const std::vector<ClientInfo> clients = {{"a", 4, 1, "test-model"}, {"b", 4, 1, "test-model"}};
  strategy->configure_fit(1, clients);
  const std::vector<FitResult> results = {{"a", random_adapter(4), 1, {}},
                                          {"b", random_adapter(4), 1, {}}};
  strategy->aggregate_fit(1, results, {});
  const auto evaluation = strategy->configure_evaluate(1, clients);
  REQUIRE(evaluation.size() == 2);
  for (const auto& instruction : evaluation) {
    CHECK(at::allclose(instruction.adapter.dense_delta().at("fc1"),
                       strategy->global_delta().at("fc1")));
  }
  auto quiet = make_fedavg();
  quiet->initialize(StrategyContext{test_spec(), 16.0, 1});
  CHECK(quiet->configure_evaluate(1, clients).empty());
}
