#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

TEST_CASE("flexlora averages the products and sends each client the truncation at its rank",
          "[flexlora]") {
  at::manual_seed(5);
  auto strategy = make_strategy("flexlora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const std::vector<std::int64_t> ranks = {2, 4, 6};
  const auto clients = clients_with_ranks(ranks);  // 100, 200, 300 examples
  strategy->configure_fit(1, clients);
  std::vector<FitResult> results;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    results.push_back({clients[i].id, random_adapter(ranks[i]), clients[i].num_examples, {}});
  }
  strategy->aggregate_fit(1, results, {});

  // ΔW = Σ p_i s_i B_i A_i with p ∝ examples, by dense products.
  std::map<std::string, at::Tensor> expected;
  for (const TargetLayer& layer : test_spec().targets) {
    at::Tensor sum = at::zeros({layer.out_features, layer.in_features});
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      const Adapter& a = results[i].adapter;
      sum += (static_cast<double>(clients[i].num_examples) / 600.0) * a.scale() *
             at::matmul(a.layers.at(layer.name).b, a.layers.at(layer.name).a);
    }
    expected[layer.name] = sum;
    CHECK(at::allclose(strategy->global_delta().at(layer.name), sum, 1e-4, 1e-4));
  }

  // Next round: balanced factors reproducing the rank-r_i truncation of ΔW.
  const auto instructions = strategy->configure_fit(2, clients);
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    const Adapter& sent = instructions[i].adapter;
    for (const TargetLayer& layer : test_spec().targets) {
      const at::Tensor product =
          sent.scale() * at::matmul(sent.layers.at(layer.name).b, sent.layers.at(layer.name).a);
      CHECK(at::allclose(product, reference_truncation(expected.at(layer.name), ranks[i]), 1e-3,
                         1e-3));
    }
  }
}
