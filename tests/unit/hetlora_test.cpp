#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "lorafed/client_procedure.hpp"
#include "lorafed/plugin.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

TEST_CASE(
    "hetlora (literal rule) zero-pads factors, weighs them by ||s B A|| and sends leading ranks",
    "[hetlora]") {
  at::manual_seed(9);
  auto strategy = make_strategy("hetlora", "rescale = false");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const std::vector<std::int64_t> ranks = {2, 5, 3};
  const auto clients = clients_with_ranks(ranks);
  const auto first = strategy->configure_fit(1, clients);
  // The leading r_i ranks of one global adapter padded to r_max = 5.
  CHECK(at::equal(first[0].adapter.layers.at("fc1").a,
                  first[1].adapter.layers.at("fc1").a.narrow(0, 0, 2)));
  CHECK(first[1].adapter.rank() == 5);

  std::vector<FitResult> results;
  for (std::size_t i = 0; i < ranks.size(); ++i)
    results.push_back({clients[i].id, random_adapter(ranks[i]), 10, {}});
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);

  for (const TargetLayer& layer : test_spec().targets) {
    // By hand: w_i ∝ ||s_i B_i A_i||_F, padded sums.
    std::vector<double> w;
    for (const FitResult& r : results) {
      w.push_back(r.adapter.scale() *
                  at::matmul(r.adapter.layers.at(layer.name).b, r.adapter.layers.at(layer.name).a)
                      .norm()
                      .item<double>());
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
    CHECK(at::allclose(strategy->global_delta().at(layer.name), (16.0 / 5.0) * at::matmul(b, a),
                       1e-4, 1e-4));
  }
}

TEST_CASE("hetlora rescales factors between each client's scale and the global one", "[hetlora]") {
  at::manual_seed(11);
  auto strategy = make_strategy("hetlora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  const std::vector<std::int64_t> ranks = {2, 8, 4};
  const auto clients = clients_with_ranks(ranks);
  strategy->configure_fit(1, clients);
  std::vector<FitResult> results;
  for (std::size_t i = 0; i < ranks.size(); ++i)
    results.push_back({clients[i].id, random_adapter(ranks[i]), 10, {}});
  strategy->aggregate_fit(1, results, {});
  const auto next = strategy->configure_fit(2, clients);
  const NamedTensors global = strategy->global_delta();

  for (const TargetLayer& layer : test_spec().targets) {
    // By hand: w_i ∝ ||s_i B_i A_i||_F; each client's factors times sqrt(R / r_i), R = 8.
    std::vector<double> w;
    for (const FitResult& r : results) {
      const auto& f = r.adapter.layers.at(layer.name);
      w.push_back(r.adapter.scale() * at::matmul(f.b, f.a).norm().item<double>());
    }
    const double total = w[0] + w[1] + w[2];
    at::Tensor a = at::zeros({8, layer.in_features});
    at::Tensor b = at::zeros({layer.out_features, 8});
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& f = results[i].adapter.layers.at(layer.name);
      const double c = std::sqrt(8.0 / static_cast<double>(ranks[i]));
      a.narrow(0, 0, ranks[i]) += (w[i] / total) * c * f.a;
      b.narrow(1, 0, ranks[i]) += (w[i] / total) * c * f.b;
    }
    CHECK(at::allclose(global.at(layer.name), (16.0 / 8.0) * at::matmul(b, a), 1e-4, 1e-4));
    // A client's model is the global model's leading ranks, at the client's scale.
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      const auto& sent = next[i].adapter;
      const auto& f = sent.layers.at(layer.name);
      const at::Tensor leading =
          (16.0 / 8.0) * at::matmul(b.narrow(1, 0, ranks[i]), a.narrow(0, 0, ranks[i]));
      CHECK(at::allclose(sent.scale() * at::matmul(f.b, f.a), leading, 1e-4, 1e-4));
    }
  }
}

TEST_CASE("hetlora rescaled: a lone client's update is the global model as it trained it",
          "[hetlora]") {
  // Under the literal rule the global model would read rank-2 factors at alpha / 6.
  at::manual_seed(12);
  for (const bool rescale : {true, false}) {
    auto strategy = make_strategy("hetlora", rescale ? "rescale = true" : "rescale = false");
    strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
    strategy->configure_fit(1, clients_with_ranks({2, 6}));
    const FitResult only{"client-0", random_adapter(2), 10, {}};
    strategy->aggregate_fit(1, std::vector<FitResult>{only}, {});
    const NamedTensors global = strategy->global_delta();
    for (const TargetLayer& layer : test_spec().targets) {
      const auto& f = only.adapter.layers.at(layer.name);
      const at::Tensor trained = only.adapter.scale() * at::matmul(f.b, f.a);
      CHECK(at::allclose(global.at(layer.name), rescale ? trained : trained * (2.0 / 6.0), 1e-4,
                         1e-4));
    }
  }
}

TEST_CASE("hetlora grows the global adapter when a larger rank joins", "[hetlora]") {
  auto strategy = make_strategy("hetlora");
  strategy->initialize(StrategyContext{test_spec(), 16.0, 2});
  strategy->configure_fit(1, clients_with_ranks({2}));
  const auto grown = strategy->configure_fit(2, clients_with_ranks({2, 6}));
  CHECK(grown[1].adapter.rank() == 6);
  // Both the leading ranks of one global adapter, each at its own scale (sqrt(r_i / 6)).
  CHECK(at::allclose(grown[0].adapter.layers.at("head").a * std::sqrt(6.0 / 2.0),
                     grown[1].adapter.layers.at("head").a.narrow(0, 0, 2), 1e-5, 1e-6));
  CHECK(grown[1].adapter.layers.at("head").b.abs().max().item<float>() == 0.0f);
}

TEST_CASE("hetlora pruning options are checked", "[hetlora]") {
  CHECK_THROWS_WITH(make_strategy("hetlora", "pruning_gamma = 1.5"),
                    Catch::Matchers::Contains("pruning_gamma"));
}

TEST_CASE("hetlora self-pruning drops the tail ranks for good", "[hetlora]") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto strategy_plugin = registry.strategy("hetlora");
  const auto model_plugin = registry.model("linear");
  const auto config = ConfigTable::parse_string(
      "self_pruning = true\npruning_gamma = 0.5\npruning_threshold = 0.99", "p.toml");
  auto procedure = keep_library_alive(strategy_plugin.factory->create_client_procedure(config),
                                      strategy_plugin.factory);
  auto model =
      keep_library_alive(model_plugin.factory->create(
                             ConfigTable(), ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
                         model_plugin.factory);
  ClientContext context;
  context.rank = 8;
  context.train.local_steps = 5;
  context.train.learning_rate = 0.1;

  const auto tail_is_zero = [](const Adapter& adapter, std::int64_t keep) {
    const LoraFactors& f = adapter.layers.at("linear");
    return f.a.narrow(0, keep, f.a.size(0) - keep).abs().max().item<float>() == 0.0f &&
           f.b.narrow(1, keep, f.b.size(1) - keep).abs().max().item<float>() == 0.0f;
  };
  FitInstruction instruction{"client-0", init_adapter(model->spec(), 8, 8.0, 1), {}};
  instruction.adapter.layers.at("linear").b.normal_();  // a tail worth something
  const FitOutcome first = procedure->fit(*model, instruction, context);
  CHECK(first.metrics.at("active_rank") == 4.0);
  CHECK(first.adapter.rank() == 8);  // still the rank it was sent, the tail zeroed
  CHECK(tail_is_zero(first.adapter, 4));
  // The next round's adapter has a live tail again; the client keeps it dead and prunes further.
  const FitOutcome second = procedure->fit(*model, instruction, context);
  CHECK(second.metrics.at("active_rank") == 2.0);
  CHECK(tail_is_zero(second.adapter, 2));
}
