// The cnnzoo model backend and pFedLoRA's client phases, checked on tensors.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "src/plugin_registry.hpp"

using namespace lorafed;

namespace {

const PluginRegistry& registry() {
  static const PluginRegistry instance({LORAFED_BUILD_PLUGIN_DIR});
  return instance;
}

std::shared_ptr<ModelBackend> make_client_model(std::int64_t index, std::int64_t num_clients = 5) {
  const auto plugin = registry().model("cnnzoo");
  const auto config =
      ConfigTable::parse_string("max_train_examples = 64\nmax_test_examples = 32\n", "test.toml");
  return keep_library_alive(
      plugin.factory->create(config,
                             ModelContext{ModelContext::Role::kClient, index, num_clients, 7, {}}),
      plugin.factory);
}

std::shared_ptr<ClientProcedure> make_procedure(const std::string& strategy,
                                                const std::string& config_text = "") {
  const auto plugin = registry().strategy(strategy);
  const auto config = ConfigTable::parse_string(config_text, "test.toml");
  return keep_library_alive(plugin.factory->create_client_procedure(config), plugin.factory);
}

bool all_equal(const NamedTensors& x, const NamedTensors& y) {
  if (x.size() != y.size()) return false;
  for (const auto& [name, tensor] : x) {
    if (!at::equal(tensor, y.at(name))) return false;
  }
  return true;
}

bool all_differ(const NamedTensors& x, const NamedTensors& y) {
  for (const auto& [name, tensor] : x) {
    if (at::equal(tensor, y.at(name))) return false;
  }
  return true;
}

TrainOptions quick_training() {
  TrainOptions options;
  options.learning_rate = 0.05;
  options.batch_size = 16;
  options.local_epochs = 1;
  return options;
}

// An adapter with B ≠ 0, so that both factors receive gradients.
Adapter nonzero_adapter(const ModelSpec& spec, std::int64_t rank) {
  Adapter adapter = init_adapter(spec, rank, 8.0, 1);
  for (auto& [name, factors] : adapter.layers) factors.b = at::randn(factors.b.sizes()) * 0.1;
  return adapter;
}

}  // namespace

TEST_CASE("the five zoo models differ but share one adapter shape", "[cnnzoo]") {
  // The zoo as written in the issue: second conv channels and first fc width.
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected = {
      {32, 2000}, {16, 2000}, {32, 1000}, {32, 800}, {32, 500}};
  std::set<std::int64_t> sizes;
  for (std::int64_t index = 0; index < 5; ++index) {
    const auto model = make_client_model(index);
    const NamedTensors local = model->local_parameters();
    const auto [channels, width] = expected[index];
    CHECK(local.at("conv2.weight").sizes().vec() == std::vector<std::int64_t>{channels, 16, 5, 5});
    CHECK(local.at("fc1.weight").sizes().vec() == std::vector<std::int64_t>{width, channels * 16});
    CHECK(local.at("fc2.weight").sizes().vec() == std::vector<std::int64_t>{500, width});
    CHECK(local.at("fc3.weight").sizes().vec() == std::vector<std::int64_t>{10, 500});
    std::int64_t count = 0;
    for (const auto& [name, tensor] : local) count += tensor.numel();
    sizes.insert(count);

    const ModelSpec spec = model->spec();
    CHECK(spec.model_id == "cnnzoo");
    REQUIRE(spec.targets.size() == 1);
    CHECK(spec.targets[0].name == "fc3");
    CHECK(spec.targets[0].in_features == 500);
    CHECK(spec.targets[0].out_features == 10);
    // The same adapter installs on every model and returns unchanged.
    const Adapter adapter = nonzero_adapter(spec, 4);
    model->install_adapter(adapter);
    CHECK(at::equal(model->adapter().layers.at("fc3").a, adapter.layers.at("fc3").a));
    CHECK(model->evaluate().num_examples > 0);
  }
  CHECK(sizes.size() == 5);  // five different local models
}

TEST_CASE("a zero adapter leaves the local model's output unchanged", "[cnnzoo]") {
  const auto model = make_client_model(2);
  const EvalReport without = model->evaluate();
  model->install_adapter(init_adapter(model->spec(), 4, 8.0, 1));  // B = 0
  const EvalReport with = model->evaluate();
  CHECK(with.loss == without.loss);
  model->install_adapter(nonzero_adapter(model->spec(), 4));
  CHECK(model->evaluate().loss != without.loss);
}

TEST_CASE("training the local group leaves the adapter alone, and the reverse", "[cnnzoo]") {
  const auto model = make_client_model(0);
  model->install_adapter(nonzero_adapter(model->spec(), 4));

  const Adapter adapter_before = model->adapter();
  const NamedTensors local_before = model->local_parameters();
  model->train(ParameterGroup::kLocal, quick_training(), 1);
  CHECK(all_equal(to_named_tensors(model->adapter()), to_named_tensors(adapter_before)));
  CHECK(all_differ(model->local_parameters(), local_before));

  const NamedTensors local_after_phase_1 = model->local_parameters();
  model->train(ParameterGroup::kAdapter, quick_training(), 2);
  CHECK(all_equal(model->local_parameters(), local_after_phase_1));
  CHECK(all_differ(to_named_tensors(model->adapter()), to_named_tensors(adapter_before)));
}

TEST_CASE("pfedlora's client trains both phases and returns only the adapter", "[cnnzoo]") {
  const auto model = make_client_model(1);
  const auto procedure = make_procedure("pfedlora");
  const Adapter sent = nonzero_adapter(model->spec(), 4);
  const NamedTensors local_before = model->local_parameters();
  ClientContext context;
  context.client_id = "client-1";
  context.rank = 4;
  context.seed = 11;
  context.train = quick_training();
  const FitOutcome outcome = procedure->fit(*model, FitInstruction{"client-1", sent, {}}, context);
  CHECK(all_differ(to_named_tensors(outcome.adapter), to_named_tensors(sent)));
  CHECK(all_differ(model->local_parameters(), local_before));
  CHECK(outcome.parameters.empty());
  CHECK(outcome.num_examples == 64);
  CHECK(outcome.metrics.at("local_parameters") ==
        static_cast<double>(total_elements(local_before)));
  // Both phases are counted (their relative cost is checked per group below).
  CHECK(outcome.metrics.at("train_flops") > 0);
}

TEST_CASE("pfedlora's phases run for the configured steps", "[cnnzoo]") {
  const auto model = make_client_model(2);
  const auto procedure = make_procedure("pfedlora", "local_steps = 2\nadapter_steps = 3\n");
  ClientContext context;
  context.rank = 4;
  context.seed = 5;
  context.train = quick_training();  // 64 examples, batch 16: 4 steps an epoch
  const FitOutcome outcome = procedure->fit(
      *model, FitInstruction{"client-2", nonzero_adapter(model->spec(), 4), {}}, context);
  CHECK(outcome.metrics.at("local_steps") == 2);
  CHECK(outcome.metrics.at("adapter_steps") == 3);
}

TEST_CASE("cnnzoo counts training FLOPs per parameter group", "[cnnzoo]") {
  // Model 5 (conv2 32 channels, fc1 500 wide) with a rank-4 adapter, by hand:
  // multiply-adds per example of conv1, conv2, fc1, fc2, fc3, lora_A, lora_B.
  const double conv1 = 24.0 * 24 * 16 * 25, conv2 = 8.0 * 8 * 32 * 16 * 25;
  const double fc1 = 512.0 * 500, fc2 = 500.0 * 500, fc3 = 500.0 * 10;
  const double lora_a = 4.0 * 500, lora_b = 10.0 * 4;
  const double forward = 2 * (conv1 + conv2 + fc1 + fc2 + fc3 + lora_a + lora_b);
  // Adapter only: its weight gradients, and the input gradient of B (A is upstream).
  const double adapter_only = forward + 2 * (lora_a + lora_b) + 2 * lora_b;
  // Local model: weight gradients of all five layers, input gradients of all
  // but conv1 (nothing trainable upstream of it), and through the adapter to h.
  const double local_only = forward + 2 * (conv1 + conv2 + fc1 + fc2 + fc3) +
                            2 * (conv2 + fc1 + fc2 + fc3 + lora_a + lora_b);

  const auto model = make_client_model(4);
  model->install_adapter(nonzero_adapter(model->spec(), 4));
  TrainOptions one_step = quick_training();
  one_step.local_steps = 1;
  const TrainReport adapter = model->train(ParameterGroup::kAdapter, one_step, 1);
  CHECK(adapter.flops == Approx(adapter_only * 16));
  const TrainReport local = model->train(ParameterGroup::kLocal, one_step, 1);
  CHECK(local.flops == Approx(local_only * 16));
  CHECK(local.flops > 2.5 * adapter.flops);
}

TEST_CASE("cnnzoo clients get the configured numbers of examples", "[cnnzoo]") {
  const auto plugin = registry().model("cnnzoo");
  const auto config = ConfigTable::parse_string("max_train_examples = 400\n", "test.toml");
  const auto model =
      plugin.factory->create(config, ModelContext{ModelContext::Role::kClient, 3, 10, 21, {}});
  CHECK(model->num_train_examples() == 400);
  CHECK(model->evaluate().num_examples == 200);  // max_test_examples' default
}

TEST_CASE("the server's cnnzoo has no global model to evaluate", "[cnnzoo]") {
  const auto plugin = registry().model("cnnzoo");
  const auto config = ConfigTable::parse_string("", "test.toml");
  const auto server =
      plugin.factory->create(config, ModelContext{ModelContext::Role::kServer, -1, 5, 7, {}});
  CHECK(server->spec().targets.size() == 1);
  CHECK_THROWS_WITH(server->evaluate(), Catch::Matchers::Contains("personalised strategy"));
}

TEST_CASE("cnnzoo rejects bad configuration with the key's name", "[cnnzoo]") {
  const auto plugin = registry().model("cnnzoo");
  const ModelContext context{ModelContext::Role::kServer, -1, 5, 7, {}};
  for (const char* text : {"zoo = [6]", "zoo = []", "partition = \"shards\"",
                           "classes_per_client = 11", "max_train_examples = -1"}) {
    INFO(text);
    const auto config = ConfigTable::parse_string(text, "test.toml");
    CHECK_THROWS_AS(plugin.factory->create(config, context), ConfigError);
  }
}
