// The SDK's training loop and its hooks: what a hook sees and when, the
// proximal term's gradient by hand, and FedProx with μ = 0 against FedAvg.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "lorafed/client_procedure.hpp"
#include "lorafed/error.hpp"
#include "lorafed/proximal_term.hpp"
#include "lorafed/training_hook.hpp"
#include "lorafed/training_loop.hpp"
#include "src/plugin_registry.hpp"

using namespace lorafed;

namespace {

// Least squares y = x wᵀ on 12 fixed examples; its parameter is "w".
struct Problem {
  at::Tensor inputs = at::arange(36, at::kFloat).reshape({12, 3}) / 10;
  at::Tensor targets = at::matmul(inputs, at::tensor({1.0F, -2.0F, 0.5F}));

  BatchLoss loss(const at::Tensor& w) const {
    return [this, w](const at::Tensor& rows) {
      return (at::matmul(inputs.index_select(0, rows), w) - targets.index_select(0, rows))
          .square()
          .mean();
    };
  }
};

TrainOptions sgd(std::int64_t steps) {
  TrainOptions options;
  options.learning_rate = 0.05;
  options.batch_size = 4;
  options.local_steps = steps;
  return options;
}

// Records what the loop shows it.
struct Recorder final : TrainingHook {
  std::vector<std::string> names;
  std::int64_t begins = 0, terms = 0, steps_before = 0, ended_after = -1;
  at::Tensor constant;  // added to the loss when defined
  void begin(const NamedTensors& trainable) override {
    ++begins;
    for (const auto& [name, tensor] : trainable) {
      names.push_back(name);
      CHECK(tensor.requires_grad());
    }
  }
  at::Tensor loss_term(const NamedTensors&) override {
    ++terms;
    return constant;
  }
  void before_step(const NamedTensors& trainable) override {
    ++steps_before;
    CHECK(trainable.at("w").grad().defined());  // after backward, before the step
  }
  void end(const NamedTensors&, std::int64_t steps) override { ended_after = steps; }
};

}  // namespace

TEST_CASE("the training loop calls its hook around every step, by name", "[hook]") {
  const Problem problem;
  auto run = [&](std::shared_ptr<TrainingHook> hook) {
    at::Tensor w = at::zeros({3});
    TrainOptions options = sgd(5);
    options.hook = std::move(hook);
    const TrainReport report = train_minibatches(problem.loss(w), {{"w", w}}, 12, options, 7);
    return std::pair{w, report};
  };
  const auto [plain_w, plain] = run(nullptr);

  auto recorder = std::make_shared<Recorder>();
  recorder->constant = at::scalar_tensor(5.0);  // no gradient: the trajectory is the same
  const auto [hooked_w, hooked] = run(recorder);
  CHECK(recorder->names == std::vector<std::string>{"w"});
  CHECK(recorder->begins == 1);
  CHECK(recorder->terms == 5);
  CHECK(recorder->steps_before == 5);
  CHECK(recorder->ended_after == 5);
  CHECK(at::equal(hooked_w, plain_w));
  // The reported loss is the model's, without the hook's terms.
  CHECK(hooked.mean_loss == plain.mean_loss);
  CHECK(!hooked_w.requires_grad());
  CHECK(!hooked_w.grad().defined());
}

TEST_CASE("a hook that changes gradients changes the step", "[hook]") {
  // before_step zeroes the gradient: SGD then leaves the parameter alone.
  struct Freeze final : TrainingHook {
    void before_step(const NamedTensors& trainable) override {
      trainable.at("w").mutable_grad().zero_();
    }
  };
  const Problem problem;
  at::Tensor w = at::ones({3});
  TrainOptions options = sgd(3);
  options.hook = std::make_shared<Freeze>();
  train_minibatches(problem.loss(w), {{"w", w}}, 12, options, 7);
  CHECK(at::equal(w, at::ones({3})));
}

TEST_CASE("the proximal term's gradient is mu (theta - theta_anchor)", "[hook][fedprox]") {
  const double mu = 0.3;
  const at::Tensor anchor = at::tensor({0.5F, -1.0F, 2.0F});
  const at::Tensor start = at::tensor({1.5F, 0.0F, -1.0F});
  auto hook = proximal_term(mu, {{"w", anchor}});

  // The gradient it adds, against μ (θ − θ_a) by hand, on top of the
  // model's (here 1 everywhere), and against autograd's gradient of
  // μ/2 Σ (θ − θ_a)².
  at::Tensor w = start.clone().requires_grad_(true);
  const NamedTensors trainable = {{"w", w}};
  hook->begin(trainable);
  w.sum().backward();
  hook->before_step(trainable);
  CHECK(at::allclose(w.grad(), at::tensor({1.3F, 1.3F, 0.1F})));
  at::Tensor v = start.clone().requires_grad_(true);
  (mu / 2 * (v - anchor).square().sum()).backward();
  CHECK(at::allclose(w.grad() - 1, v.grad()));

  // One SGD step on a model loss with no gradient: θ − η μ (θ − θ_a).
  at::Tensor trained = start.clone();
  TrainOptions options = sgd(1);
  options.hook = hook;
  train_minibatches([&](const at::Tensor&) { return (trained * 0).sum(); }, {{"w", trained}}, 12,
                    options, 7);
  CHECK(at::allclose(trained,
                     at::tensor({1.5F - 0.05F * 0.3F, -0.05F * 0.3F, -1.0F + 0.05F * 0.9F})));
}

TEST_CASE("the proximal term refuses what it cannot pull", "[hook][fedprox]") {
  at::Tensor w = at::zeros({3}).requires_grad_(true);
  CHECK_THROWS_WITH(proximal_term(0.1, {{"v", at::zeros({3})}})->begin({{"w", w}}),
                    Catch::Matchers::Contains("'v' is not among the tensors being trained"));
  CHECK_THROWS_WITH(proximal_term(0.1, {{"w", at::zeros({2})}})->begin({{"w", w}}),
                    Catch::Matchers::Contains("'w' is trained with shape [3]"));
  CHECK_THROWS_AS(proximal_term(-1, {}), Error);
  CHECK_THROWS_AS(proximal_term(std::nan(""), {}), Error);
}

TEST_CASE("fedprox with mu = 0 trains exactly as fedavg, and mu > 0 pulls towards the global",
          "[hook][fedprox]") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto model_plugin = registry.model("linear");
  auto fit_with = [&](const std::string& strategy, const std::string& config_text) {
    const auto plugin = registry.strategy(strategy);
    const auto config = ConfigTable::parse_string(config_text, "test.toml");
    auto procedure =
        keep_library_alive(plugin.factory->create_client_procedure(config), plugin.factory);
    auto model = keep_library_alive(
        model_plugin.factory->create(ConfigTable(),
                                     ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
        model_plugin.factory);
    const Adapter global = init_adapter(model->spec(), 4, 8.0, 3);
    ClientContext context;
    context.rank = 4;
    context.seed = 5;
    context.train.learning_rate = 0.05;
    context.train.momentum = 0.9;
    context.train.local_epochs = 2;
    const FitOutcome outcome =
        procedure->fit(*model, FitInstruction{"client-0", global, {}}, context);
    return std::pair{global, outcome};
  };
  const auto [global, fedavg] = fit_with("fedavg", "");
  const auto [same_global, prox0] = fit_with("fedprox", "mu = 0.0");
  REQUIRE(fedavg.adapter.layers.size() == 1);
  for (const auto& [name, factors] : fedavg.adapter.layers) {
    CHECK(at::equal(factors.a, prox0.adapter.layers.at(name).a));
    CHECK(at::equal(factors.b, prox0.adapter.layers.at(name).b));
  }
  CHECK(fedavg.metrics.at("train_loss") == prox0.metrics.at("train_loss"));

  // A strong pull keeps the adapter nearer the global one than FedAvg's.
  const auto [unused, prox] = fit_with("fedprox", "mu = 10.0");
  auto distance = [&](const Adapter& adapter) {
    double total = 0;
    for (const auto& [name, factors] : adapter.layers) {
      total += (factors.a - global.layers.at(name).a).square().sum().item<double>() +
               (factors.b - global.layers.at(name).b).square().sum().item<double>();
    }
    return total;
  };
  CHECK(distance(prox.adapter) < 0.5 * distance(fedavg.adapter));
  CHECK(distance(fedavg.adapter) > 0);

  const auto plugin = registry.strategy("fedprox");
  CHECK_THROWS_WITH(
      plugin.factory->create_strategy(ConfigTable::parse_string("mu = -1.0", "bad.toml")),
      Catch::Matchers::Contains("mu") && Catch::Matchers::Contains("[0, 1e6]"));
}

TEST_CASE("fedhl and flexlora clients take a proximal term at their own rank", "[hook][fedprox]") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto model_plugin = registry.model("linear");
  auto fit_with = [&](const std::string& strategy, const std::string& config_text,
                      std::int64_t rank) {
    const auto plugin = registry.strategy(strategy);
    auto procedure = keep_library_alive(
        plugin.factory->create_client_procedure(ConfigTable::parse_string(config_text, "t.toml")),
        plugin.factory);
    auto model = keep_library_alive(
        model_plugin.factory->create(ConfigTable(),
                                     ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
        model_plugin.factory);
    // What a truncating strategy sends: factors at the client's rank, B not 0.
    Adapter sent = init_adapter(model->spec(), rank, 8.0, 3);
    for (auto& [name, factors] : sent.layers) factors.b = 0.1 * at::ones_like(factors.b);
    ClientContext context;
    context.rank = rank;
    context.seed = 5;
    context.train.learning_rate = 0.05;
    context.train.local_epochs = 2;
    const FitOutcome outcome =
        procedure->fit(*model, FitInstruction{"client-0", sent, {}}, context);
    double distance = 0;
    for (const auto& [name, factors] : outcome.adapter.layers) {
      distance += (factors.a - sent.layers.at(name).a).square().sum().item<double>() +
                  (factors.b - sent.layers.at(name).b).square().sum().item<double>();
    }
    return distance;
  };
  for (const std::string strategy : {"fedhl", "flexlora"}) {
    INFO(strategy);
    for (const std::int64_t rank : {2, 8}) {
      const double free = fit_with(strategy, "", rank);
      CHECK(fit_with(strategy, "proximal_mu = 0.0", rank) == free);
      CHECK(fit_with(strategy, "proximal_mu = 10.0", rank) < 0.5 * free);
    }
  }
  const auto plugin = registry.strategy("fedhl");
  CHECK_THROWS_WITH(plugin.factory->create_client_procedure(
                        ConfigTable::parse_string("proximal_mu = -1.0", "bad.toml")),
                    Catch::Matchers::Contains("proximal_mu"));
}
