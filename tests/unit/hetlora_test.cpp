#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

TEST_CASE("hetlora zero-pads factors, weighs them by ||s B A|| and sends leading ranks", "[hetlora]") {
  at::manual_seed(9);
  auto strategy = make_strategy("hetlora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const std::vector<std::int64_t> ranks = {2, 5, 3};
  const auto clients = clients_with_ranks(ranks);
  const auto first = strategy->configure_fit(1, clients);
  // The leading r_i ranks of one global adapter padded to r_max = 5.
  CHECK(at::equal(first[0].adapter.layers.at("fc1").a, first[1].adapter.layers.at("fc1").a.narrow(0, 0, 2)));
  CHECK(first[1].adapter.rank() == 5);

  std::vector<FitResult> results;
  for (std::size_t i = 0; i < ranks.size(); ++i) results.push_back({clients[i].id, random_adapter(ranks[i]), 10, {}});
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);

  for (const TargetLayer& layer : test_spec().targets) {
    // By hand: w_i ∝ ||s_i B_i A_i||_F, padded sums.
    std::vector<double> w;
    for (const FitResult& r : results) {
      w.push_back(r.adapter.scale() *
                  at::matmul(r.adapter.layers.at(layer.name).b, r.adapter.layers.at(layer.name).a).norm().item<double>());
    }
    const double total = w[0] + w[1] + w[2];
    at::Tensor a = at::zeros({5, layer.in_features});
    at::Tensor b = at::zeros({layer.out_features, 5});
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& f = results[i].adapter.layers.at(layer.name);
      a.narrow(0, 0, ranks[i]) += (w[i] / total) * f.a;
      b.narrow(1, 0, ranks[i]) += (w[i] / total) * f.b;
    }
    CHECK(at::allclose(next[1].adapter.layers.at(layer.name).a, a, 1e-5, 1e-5));
    CHECK(at::allclose(next[1].adapter.layers.at(layer.name).b, b, 1e-5, 1e-5));
    CHECK(at::allclose(next[0].adapter.layers.at(layer.name).a, a.narrow(0, 0, 2), 1e-5, 1e-5));
    // The global model: the padded factors at r_max, s = alpha / 5.
    CHECK(at::allclose(strategy->global_delta().at(layer.name), (16.0 / 5.0) * at::matmul(b, a), 1e-4, 1e-4));
  }
}

TEST_CASE("hetlora grows the global adapter when a larger rank joins", "[hetlora]") {
  auto strategy = make_strategy("hetlora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  strategy->configure_fit(1, clients_with_ranks({2}));
  const auto grown = strategy->configure_fit(2, clients_with_ranks({2, 6}));
  CHECK(grown[1].adapter.rank() == 6);
  CHECK(at::equal(grown[0].adapter.layers.at("head").a, grown[1].adapter.layers.at("head").a.narrow(0, 0, 2)));
  CHECK(grown[1].adapter.layers.at("head").b.abs().max().item<float>() == 0.0f);
}

TEST_CASE("hetlora pruning options are checked", "[hetlora]") {
  CHECK_THROWS_WITH(make_strategy("hetlora", "pruning_gamma = 1.5"), Catch::Matchers::Contains("pruning_gamma"));
}
