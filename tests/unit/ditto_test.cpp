// Ditto's client half (docs/algorithms.md §Ditto): the global adapter it
// returns is FedAvg's, and the personal adapter it evaluates is its own,
// kept from round to round.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "lorafed/client_procedure.hpp"
#include "src/plugin_registry.hpp"

using namespace lorafed;

namespace {

struct Rig {
  static const PluginRegistry& registry() {
    static const PluginRegistry plugins({LORAFED_BUILD_PLUGIN_DIR});
    return plugins;
  }
  LoadedPlugin<ModelFactory> model_plugin = registry().model("linear");

  std::shared_ptr<ClientProcedure> procedure(const std::string& strategy,
                                             const std::string& config_text) {
    const auto plugin = registry().strategy(strategy);
    return keep_library_alive(plugin.factory->create_client_procedure(
                                  ConfigTable::parse_string(config_text, "test.toml")),
                              plugin.factory);
  }
  std::shared_ptr<ModelBackend> model() {
    return keep_library_alive(
        model_plugin.factory->create(ConfigTable(),
                                     ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
        model_plugin.factory);
  }
};

ClientContext context() {
  ClientContext context;
  context.client_id = "client-0";
  context.rank = 4;
  context.seed = 5;
  context.train.learning_rate = 0.05;
  context.train.local_epochs = 2;
  return context;
}

}  // namespace

TEST_CASE("ditto returns fedavg's adapter and evaluates its own, kept between rounds", "[ditto]") {
  Rig rig;
  auto model = rig.model();
  const Adapter global = init_adapter(model->spec(), 4, 8.0, 3);
  const FitInstruction fit{"client-0", global, {}};
  const EvaluateInstruction evaluate{"client-0", global, {}};

  auto ditto = rig.procedure("ditto", "lambda = 0.0");
  auto fedavg = rig.procedure("fedavg", "");
  // Before it trains, a client's own model is the global one.
  const double global_loss = fedavg->evaluate(*rig.model(), evaluate, context()).loss;
  CHECK(ditto->evaluate(*model, evaluate, context()).loss == global_loss);

  const FitOutcome returned = ditto->fit(*model, fit, context());
  const FitOutcome expected = fedavg->fit(*rig.model(), fit, context());
  for (const auto& [name, factors] : expected.adapter.layers) {
    CHECK(at::equal(returned.adapter.layers.at(name).a, factors.a));
    CHECK(at::equal(returned.adapter.layers.at(name).b, factors.b));
  }
  CHECK(returned.metrics.contains("personal_train_loss"));

  // Evaluated: the personal adapter (trained), not the global one sent.
  const double after_one = ditto->evaluate(*model, evaluate, context()).loss;
  CHECK(after_one < global_loss);
  // The same instruction and seed again: a personal adapter that restarted
  // from the global one would come out identical; Ditto's goes on.
  ditto->fit(*model, fit, context());
  const double after_two = ditto->evaluate(*model, evaluate, context()).loss;
  CHECK(after_two != after_one);
  CHECK(after_two < global_loss);

  CHECK_THROWS_WITH(rig.procedure("ditto", "lambda = -0.5"),
                    Catch::Matchers::Contains("lambda") && Catch::Matchers::Contains("[0, 1e6]"));
  CHECK_THROWS_WITH(rig.procedure("ditto", "personal_epochs = -1"),
                    Catch::Matchers::Contains("personal_epochs"));
}
