#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

TEST_CASE("flora stacks factors so the stack's product is the weighted sum of products",
          "[flora]") {
  at::manual_seed(4);
  auto strategy = make_strategy("flora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const std::vector<std::int64_t> ranks = {2, 3, 5};
  const auto clients = clients_with_ranks(ranks);  // 100, 200, 300 examples
  const auto first = strategy->configure_fit(1, clients);
  for (const auto& instruction : first) {
    CHECK(instruction.merge.layers.empty());  // nothing to merge in round 1
    CHECK(instruction.adapter.layers.at("fc1").b.abs().max().item<float>() == 0.0f);  // fresh LoRA
  }
  std::vector<FitResult> results;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    results.push_back({clients[i].id, random_adapter(ranks[i]), clients[i].num_examples, {}});
  }
  strategy->aggregate_fit(1, results, {});

  const auto second = strategy->configure_fit(2, clients);
  for (const TargetLayer& layer : test_spec().targets) {
    at::Tensor expected = at::zeros({layer.out_features, layer.in_features});
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      const Adapter& a = results[i].adapter;
      expected += (static_cast<double>(clients[i].num_examples) / 600.0) * a.scale() *
                  at::matmul(a.layers.at(layer.name).b, a.layers.at(layer.name).a);
    }
    const Adapter& stack = second[0].merge;
    CHECK(stack.rank() == 2 + 3 + 5);  // the downlink grows with Σ r_i
    CHECK(at::allclose(stack.dense_delta().at(layer.name), expected, 1e-4, 1e-4));
    CHECK(at::allclose(strategy->global_delta().at(layer.name), expected, 1e-4, 1e-4));
  }
  // Round 2's adapters are fresh again, at each client's rank.
  CHECK(second[2].adapter.rank() == 5);
  CHECK(second[2].adapter.layers.at("head").b.abs().max().item<float>() == 0.0f);
}

TEST_CASE("flora sends a client every stack it missed", "[flora]") {
  auto strategy = make_strategy("flora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const auto both = clients_with_ranks({2, 3});
  const std::vector<ClientInfo> only_first = {both[0]};
  strategy->configure_fit(1, both);
  strategy->aggregate_fit(1, std::vector<FitResult>{{both[0].id, random_adapter(2), 1, {}}}, {});
  strategy->configure_fit(2, only_first);
  strategy->aggregate_fit(2, std::vector<FitResult>{{both[0].id, random_adapter(2), 1, {}}}, {});
  const auto third = strategy->configure_fit(3, both);
  CHECK(third[0].merge.rank() == 2);      // client 0 merged round 1 already
  CHECK(third[1].merge.rank() == 2 + 2);  // client 1 missed round 2: both stacks
  CHECK(at::allclose(third[1].merge.dense_delta().at("fc1"), strategy->global_delta().at("fc1"),
                     1e-4, 1e-4));
}

TEST_CASE("flora's client evaluation is the merged base plus the stacks not merged yet",
          "[flora]") {
  auto strategy = make_strategy("flora", "evaluate_clients = true");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const auto both = clients_with_ranks({2, 3});
  CHECK(strategy->configure_evaluate(0, both)[0].adapter.layers.empty());  // nothing yet
  strategy->configure_fit(1, both);
  strategy->aggregate_fit(1, std::vector<FitResult>{{both[0].id, random_adapter(2), 1, {}}}, {});
  const std::vector<ClientInfo> only_first = {both[0]};
  strategy->configure_fit(2, only_first);  // client 0 merges round 1's stack
  const auto evaluation = strategy->configure_evaluate(2, both);
  REQUIRE(evaluation.size() == 2);
  CHECK(evaluation[0].adapter.layers.empty());  // client 0's base is the global model
  // Client 1 merged nothing: its evaluation adapter is the whole global change.
  CHECK(at::allclose(evaluation[1].adapter.dense_delta().at("fc1"),
                     strategy->global_delta().at("fc1"), 1e-4, 1e-4));
  // Off by default.
  auto quiet = make_strategy("flora");
  quiet->initialize(StrategyContext{test_spec(), 16.0, 2});
  CHECK(quiet->configure_evaluate(1, both).empty());
}
