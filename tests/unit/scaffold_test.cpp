// SCAFFOLD (docs/algorithms.md §SCAFFOLD): the server's control variate
// and the client's corrected steps and control update, against by-hand
// computations.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "lorafed/client_procedure.hpp"
#include "lorafed/error.hpp"
#include "unit/strategy_fixture.hpp"

using namespace lorafed;
using namespace lorafed::test;

namespace {

Adapter filled_like(const Adapter& adapter, double value) {
  Adapter filled = adapter;
  for (auto& [name, factors] : filled.layers) {
    factors = {at::full_like(factors.a, value), at::full_like(factors.b, value)};
  }
  return filled;
}

bool same(const Adapter& x, const Adapter& y, double tolerance = 0) {
  if (x.layers.size() != y.layers.size()) return false;
  for (const auto& [name, factors] : x.layers) {
    const LoraFactors& other = y.layers.at(name);
    if (tolerance == 0 ? !(at::equal(factors.a, other.a) && at::equal(factors.b, other.b))
                       : !(at::allclose(factors.a, other.a, tolerance, tolerance) &&
                           at::allclose(factors.b, other.b, tolerance, tolerance))) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("scaffold's server sends c and moves it by the mean change over all clients",
          "[scaffold]") {
  at::manual_seed(4);
  auto scaffold = make_strategy("scaffold", "weighting = \"uniform\"");
  auto fedavg = make_strategy("fedavg", "weighting = \"uniform\"");
  const StrategyContext context{test_spec(), 16.0, 5, /*num_clients=*/4};
  scaffold->initialize(context);
  fedavg->initialize(context);
  const auto clients = clients_with_ranks({4, 4, 4});
  const auto sent = scaffold->configure_fit(1, clients);
  REQUIRE(sent.size() == 3);
  for (const FitInstruction& instruction : sent) {
    CHECK(same(instruction.control, filled_like(instruction.adapter, 0.0)));
  }
  fedavg->configure_fit(1, clients);

  std::vector<FitResult> results;
  for (std::size_t i = 0; i < 2; ++i) {  // client 2 failed
    FitResult result{clients[i].id, random_adapter(4), 50, {}};
    result.control = random_adapter(4);
    results.push_back(result);
  }
  const std::vector<Failure> failures = {{clients[2].id, "timeout"}};
  scaffold->aggregate_fit(1, results, failures);
  fedavg->aggregate_fit(1, results, failures);
  // The global adapter is FedAvg's.
  for (const auto& [name, delta] : fedavg->global_delta()) {
    CHECK(at::equal(scaffold->global_delta().at(name), delta));
  }
  // c = 0 + (Δc_0 + Δc_1) / N with N = 4, not the 2 that returned.
  const auto next = scaffold->configure_fit(2, clients);
  for (const auto& [name, factors] : next.front().control.layers) {
    const LoraFactors& first = results[0].control.layers.at(name);
    const LoraFactors& second = results[1].control.layers.at(name);
    CHECK(at::allclose(factors.a, (first.a + second.a) / 4));
    CHECK(at::allclose(factors.b, (first.b + second.b) / 4));
  }

  // A checkpoint restores c with the global adapter.
  auto restored = make_strategy("scaffold", "weighting = \"uniform\"");
  restored->initialize(context);
  restored->load_state(scaffold->state());
  CHECK(same(restored->configure_fit(2, clients).front().control, next.front().control));

  // A client that returns no control change is not folded in silently.
  std::vector<FitResult> bare = {FitResult{clients[0].id, random_adapter(4), 50, {}}};
  CHECK_THROWS_WITH(scaffold->aggregate_fit(2, bare, {}),
                    Catch::Matchers::Contains("client-0 returned no change of its control"));
}

TEST_CASE("scaffold's client corrects every step by c - c_i and keeps c_i", "[scaffold]") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto model_plugin = registry.model("linear");
  auto make_model = [&] {
    return keep_library_alive(
        model_plugin.factory->create(ConfigTable(),
                                     ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
        model_plugin.factory);
  };
  auto procedure_of = [&](const std::string& name) {
    const auto plugin = registry.strategy(name);
    return keep_library_alive(plugin.factory->create_client_procedure(ConfigTable()),
                              plugin.factory);
  };
  auto scaffold = procedure_of("scaffold");
  auto fedavg = procedure_of("fedavg");
  const Adapter x = init_adapter(make_model()->spec(), 4, 8.0, 3);
  // One full-batch step of plain SGD: y = x − η (∇F(x) + c − c_i).
  ClientContext context;
  context.rank = 4;
  context.seed = 5;
  context.train.learning_rate = 0.05;
  context.train.local_steps = 1;
  context.train.batch_size = make_model()->num_train_examples();
  const double eta = context.train.learning_rate;

  FitInstruction instruction{"client-0", x, {}};
  instruction.control = filled_like(x, 0.01);  // c
  const FitOutcome plain = fedavg->fit(*make_model(), instruction, context);
  const FitOutcome first = scaffold->fit(*make_model(), instruction, context);
  // c_i = 0: the step is FedAvg's less η c.
  for (const auto& [name, factors] : first.adapter.layers) {
    CHECK(at::allclose(factors.a, plain.adapter.layers.at(name).a - eta * 0.01, 1e-6, 1e-7));
    CHECK(at::allclose(factors.b, plain.adapter.layers.at(name).b - eta * 0.01, 1e-6, 1e-7));
  }
  // Δc_i = c_i⁺ − c_i = (x − y) / (K η) − c, with K = 1.
  for (const auto& [name, factors] : first.control.layers) {
    CHECK(at::allclose(factors.a,
                       (x.layers.at(name).a - first.adapter.layers.at(name).a) / eta - 0.01, 1e-4,
                       1e-6));
    CHECK(at::allclose(factors.b,
                       (x.layers.at(name).b - first.adapter.layers.at(name).b) / eta - 0.01, 1e-4,
                       1e-6));
  }
  // Next round, same instruction: c_i is now Δc from above, so the step is
  // FedAvg's less η (c − c_i).
  const FitOutcome second = scaffold->fit(*make_model(), instruction, context);
  for (const auto& [name, factors] : second.adapter.layers) {
    const LoraFactors& c_i = first.control.layers.at(name);
    CHECK(at::allclose(factors.a, plain.adapter.layers.at(name).a - eta * (0.01 - c_i.a), 1e-5,
                       1e-6));
    CHECK(at::allclose(factors.b, plain.adapter.layers.at(name).b - eta * (0.01 - c_i.b), 1e-5,
                       1e-6));
  }

  // With momentum β, the step size in Δc_i is η / (1 − β).
  ClientContext momentum = context;
  momentum.train.momentum = 0.9;
  auto fresh = procedure_of("scaffold");
  const FitOutcome damped = fresh->fit(*make_model(), instruction, momentum);
  for (const auto& [name, factors] : damped.control.layers) {
    CHECK(at::allclose(factors.a,
                       (x.layers.at(name).a - damped.adapter.layers.at(name).a) * 0.1 / eta - 0.01,
                       1e-3, 1e-6));
  }

  // Without the server's c there is nothing to correct by; Adam's steps do
  // not estimate a gradient.
  CHECK_THROWS_WITH(scaffold->fit(*make_model(), FitInstruction{"client-0", x, {}}, context),
                    Catch::Matchers::Contains("carries no control variate"));
  ClientContext adam = context;
  adam.train.optimizer = "adamw";
  CHECK_THROWS_WITH(fresh->fit(*make_model(), instruction, adam),
                    Catch::Matchers::Contains("optimizer must be \"sgd\""));
}
