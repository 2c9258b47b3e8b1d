// The server halves of the personalised strategies (pfedlora, lgfedavg,
// standalone), each against a hand computation.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/error.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using lorafed::test::make_strategy;
using lorafed::test::random_adapter;
using lorafed::test::test_spec;

namespace {

ModelSpec spec_with_head() {
  ModelSpec spec = test_spec();
  spec.shared_parameters = {{"head.weight", {6, 10}}, {"head.bias", {6}}};
  return spec;
}

}  // namespace

TEST_CASE("pfedlora sends one global adapter and averages the returned ones by examples",
          "[pfedlora]") {
  at::manual_seed(3);
  auto strategy = make_strategy("pfedlora");
  strategy->initialize(StrategyContext{test_spec(), 8.0, 5});
  CHECK(strategy->personalised());
  CHECK(strategy->global_delta().empty());
  const std::vector<ClientInfo> clients = {
      {"a", 3, 100, "m"}, {"b", 3, 300, "m"}, {"c", 3, 600, "m"}};
  const auto first = strategy->configure_fit(1, clients);
  REQUIRE(first.size() == 3);
  for (const FitInstruction& instruction : first) {
    CHECK(instruction.adapter.rank() == 3);
    CHECK(instruction.adapter.alpha == 8.0);
    // The same adapter for every client, starting as LoRA does (B = 0).
    CHECK(at::equal(instruction.adapter.layers.at("fc1").a, first[0].adapter.layers.at("fc1").a));
    CHECK(instruction.adapter.layers.at("head").b.abs().sum().item<double>() == 0.0);
  }
  const std::vector<FitResult> results = {{"a", random_adapter(3, 8.0), 100, {}},
                                          {"b", random_adapter(3, 8.0), 300, {}},
                                          {"c", random_adapter(3, 8.0), 600, {}}};
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);
  for (const char* layer : {"fc1", "head"}) {
    const auto& fa = results[0].adapter.layers.at(layer);
    const auto& fb = results[1].adapter.layers.at(layer);
    const auto& fc = results[2].adapter.layers.at(layer);
    CHECK(at::allclose(next[0].adapter.layers.at(layer).a, 0.1 * fa.a + 0.3 * fb.a + 0.6 * fc.a,
                       1e-6, 1e-6));
    CHECK(at::allclose(next[2].adapter.layers.at(layer).b, 0.1 * fa.b + 0.3 * fb.b + 0.6 * fc.b,
                       1e-6, 1e-6));
  }
  // Only the adapter is shared: no merge, no model parameters.
  CHECK(next[0].merge.layers.empty());
  CHECK(next[0].parameters.empty());
  // The state is the global adapter, and reloads.
  auto restored = make_strategy("pfedlora");
  restored->initialize(StrategyContext{test_spec(), 8.0, 5});
  restored->load_state(strategy->state());
  CHECK(at::equal(restored->configure_fit(3, clients)[1].adapter.layers.at("head").a,
                  next[1].adapter.layers.at("head").a));
}

TEST_CASE("pfedlora refuses clients of different ranks", "[pfedlora]") {
  auto strategy = make_strategy("pfedlora");
  strategy->initialize(StrategyContext{test_spec(), 8.0, 5});
  const std::vector<ClientInfo> clients = {{"a", 2, 100, "m"}, {"b", 4, 100, "m"}};
  CHECK_THROWS_AS(strategy->configure_fit(1, clients), ConfigError);
}

TEST_CASE("pfedlora checks its phase options", "[pfedlora]") {
  CHECK_THROWS_WITH(make_strategy("pfedlora", "local_epochs = 0"),
                    Catch::Matchers::Contains("local_epochs"));
  CHECK_THROWS_WITH(make_strategy("pfedlora", "adapter_learning_rate = -1.0"),
                    Catch::Matchers::Contains("adapter_learning_rate"));
  CHECK_THROWS_WITH(make_strategy("pfedlora", "adapter_steps = 0"),
                    Catch::Matchers::Contains("adapter_steps"));
  CHECK_NOTHROW(make_strategy("pfedlora", "alternate = false\nlocal_epochs = 2"));
  CHECK_NOTHROW(make_strategy("pfedlora", "local_steps = 5\nadapter_steps = 3"));
}

TEST_CASE("personalised evaluation reports the mean and spread over clients", "[pfedlora]") {
  auto strategy = make_strategy("pfedlora");
  strategy->initialize(StrategyContext{test_spec(), 8.0, 5});
  const std::vector<ClientInfo> clients = {{"a", 3, 10, "m"}, {"b", 3, 1000, "m"}};
  const auto instructions = strategy->configure_evaluate(1, clients);
  REQUIRE(instructions.size() == 2);
  CHECK(instructions[0].adapter.layers.empty());  // each client evaluates its own model
  // Each client counts once, whatever its number of test examples.
  const std::vector<EvaluateResult> results = {{"a", 10, 0.5, {{"accuracy", 0.6}}},
                                               {"b", 1000, 0.3, {{"accuracy", 0.9}}}};
  const Metrics summary = strategy->aggregate_evaluate(1, results, {});
  CHECK(summary.at("accuracy") == Approx(0.75));
  CHECK(summary.at("accuracy_std") == Approx(0.15));
  CHECK(summary.at("loss") == Approx(0.4));
  CHECK(summary.at("clients_evaluated") == 2);
}

TEST_CASE("lgfedavg averages the shared head by examples and sends it back", "[lgfedavg]") {
  at::manual_seed(4);
  auto strategy = make_strategy("lgfedavg");
  strategy->initialize(StrategyContext{spec_with_head(), 8.0, 5});
  CHECK(strategy->personalised());
  const std::vector<ClientInfo> clients = {{"a", 3, 100, "m"}, {"b", 3, 300, "m"}};
  const auto first = strategy->configure_fit(1, clients);
  REQUIRE(first.size() == 2);
  CHECK(first[0].parameters.empty());  // round 1: clients start from their own heads
  CHECK(first[0].adapter.layers.empty());
  auto head = [] {
    return NamedTensors{{"head.weight", at::randn({6, 10})}, {"head.bias", at::randn({6})}};
  };
  std::vector<FitResult> results = {{"a", Adapter{}, 100, {}, head()},
                                    {"b", Adapter{}, 300, {}, head()}};
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);
  for (const char* name : {"head.weight", "head.bias"}) {
    CHECK(at::allclose(
        next[1].parameters.at(name),
        0.25 * results[0].parameters.at(name) + 0.75 * results[1].parameters.at(name), 1e-6, 1e-6));
  }
  // A client that returns another set of parameters is refused.
  results[1].parameters.erase("head.bias");
  CHECK_THROWS_AS(strategy->aggregate_fit(2, results, {}), FormatError);
}

TEST_CASE("lgfedavg needs a model with shared parameters", "[lgfedavg]") {
  auto strategy = make_strategy("lgfedavg");
  CHECK_THROWS_WITH(strategy->initialize(StrategyContext{test_spec(), 8.0, 5}),
                    Catch::Matchers::Contains("no shared parameters"));
}

TEST_CASE("standalone sends nothing and keeps no state", "[standalone]") {
  auto strategy = make_strategy("standalone");
  strategy->initialize(StrategyContext{spec_with_head(), 8.0, 5});
  CHECK(strategy->personalised());
  const std::vector<ClientInfo> clients = {{"a", 3, 100, "m"}};
  const auto instructions = strategy->configure_fit(1, clients);
  REQUIRE(instructions.size() == 1);
  CHECK(instructions[0].adapter.layers.empty());
  CHECK(instructions[0].parameters.empty());
  CHECK(strategy->state().empty());
}

TEST_CASE("shared parameters are checked against the model spec", "[lgfedavg]") {
  const ModelSpec spec = spec_with_head();
  CHECK_NOTHROW(validate_shared_parameters({{"head.bias", at::zeros({6})}}, spec));
  CHECK_THROWS_WITH(validate_shared_parameters({{"fc1.weight", at::zeros({10, 12})}}, spec),
                    Catch::Matchers::Contains("'fc1.weight' is not a shared parameter"));
  CHECK_THROWS_WITH(validate_shared_parameters({{"head.bias", at::zeros({7})}}, spec),
                    Catch::Matchers::Contains("has shape [7], expected [6]"));
  CHECK_THROWS_WITH(validate_shared_parameters({{"head.bias", at::zeros({6}, at::kDouble)}}, spec),
                    Catch::Matchers::Contains("float32"));
  at::Tensor poisoned = at::zeros({6});
  poisoned[2] = std::nan("");
  CHECK_THROWS_WITH(validate_shared_parameters({{"head.bias", poisoned}}, spec),
                    Catch::Matchers::Contains("NaN"));
}
