// PEFT export (docs/outputs.md §PEFT export), checked against PEFT's layout as
// written out here: tensor names, shapes and the adapter_config.json keys.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

#include "lorafed/safetensors.hpp"
#include "src/metrics_writer.hpp"
#include "src/peft_adapter.hpp"
#include "src/plugin_registry.hpp"
#include "src/server/run_recorder.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

// Two layers of exact rank 3: out × in = 6 × 5 and 4 × 7.
NamedTensors rank_three_delta() {
  at::manual_seed(11);
  return {{"encoder.fc1", at::matmul(at::randn({6, 3}), at::randn({3, 5}))},
          {"head", at::matmul(at::randn({4, 3}), at::randn({3, 7}))}};
}

at::Tensor product(const SafetensorsFile& file, const std::string& module, double scale) {
  return scale * at::matmul(file.tensors.at("base_model.model." + module + ".lora_B.weight"),
                            file.tensors.at("base_model.model." + module + ".lora_A.weight"));
}

}  // namespace

TEST_CASE("a PEFT export has PEFT's names, shapes and config, and reproduces the change",
          "[peft]") {
  const NamedTensors delta = rank_three_delta();
  const PeftExporter exporter(delta);
  CHECK(exporter.numerical_rank() == 3);
  const fs::path directory = test::fresh_directory("peft-exact");
  exporter.write(directory, 3, 16.0, "test-model");

  // PEFT's layout: base_model.model.<module path>.lora_A.weight is r × in,
  // lora_B.weight is out × r.
  const SafetensorsFile file = load_safetensors(directory / "adapter_model.safetensors");
  const std::map<std::string, std::vector<std::int64_t>> expected = {
      {"base_model.model.encoder.fc1.lora_A.weight", {3, 5}},
      {"base_model.model.encoder.fc1.lora_B.weight", {6, 3}},
      {"base_model.model.head.lora_A.weight", {3, 7}},
      {"base_model.model.head.lora_B.weight", {4, 3}}};
  REQUIRE(file.tensors.size() == expected.size());
  for (const auto& [name, shape] : expected) {
    INFO(name);
    REQUIRE(file.tensors.contains(name));
    CHECK(file.tensors.at(name).sizes().vec() == shape);
    CHECK(file.tensors.at(name).scalar_type() == at::kFloat);
  }
  CHECK(file.metadata.at("format") == "pt");

  std::ifstream config_file(directory / "adapter_config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  CHECK(config["peft_type"] == "LORA");
  CHECK(config["r"] == 3);
  CHECK(config["lora_alpha"] == 16);
  // Exactly the modules that carry adapters, by full path.
  CHECK(config["target_modules"] == nlohmann::json({"encoder.fc1", "head"}));
  CHECK(config["base_model_name_or_path"] == "test-model");
  CHECK(config["task_type"].is_null());
  CHECK(config["bias"] == "none");
  CHECK(config["fan_in_fan_out"] == false);

  // PEFT computes W + (lora_alpha / r)·B·A: exactly the change here.
  CHECK(at::allclose(product(file, "encoder.fc1", 16.0 / 3), delta.at("encoder.fc1"), 1e-4, 1e-4));
  CHECK(at::allclose(product(file, "head", 16.0 / 3), delta.at("head"), 1e-4, 1e-4));

  // It reloads with the same tensors.
  const PeftAdapter reloaded = load_peft_adapter(directory);
  CHECK(reloaded.adapter.alpha == 16.0);
  CHECK(reloaded.adapter.rank() == 3);
  CHECK(at::equal(reloaded.adapter.layers.at("encoder.fc1").a,
                  file.tensors.at("base_model.model.encoder.fc1.lora_A.weight")));
  CHECK(at::equal(reloaded.adapter.layers.at("head").b,
                  file.tensors.at("base_model.model.head.lora_B.weight")));
  CHECK(load_peft_adapter(directory / "adapter_model.safetensors").adapter.layers.size() == 2);
}

TEST_CASE("a PEFT export below the change's rank is its best truncation", "[peft]") {
  const NamedTensors delta = rank_three_delta();
  const fs::path directory = test::fresh_directory("peft-truncated");
  PeftExporter(delta).write(directory, 2, 8.0, "test-model");
  const SafetensorsFile file = load_safetensors(directory / "adapter_model.safetensors");
  const auto [u, s, vh] = at::linalg_svd(delta.at("head"), false);
  const at::Tensor best = at::matmul(u.narrow(1, 0, 2) * s.narrow(0, 0, 2), vh.narrow(0, 0, 2));
  CHECK(at::allclose(product(file, "head", 8.0 / 2), best, 1e-4, 1e-4));
}

TEST_CASE("a PEFT export says what share of the change it leaves out", "[peft]") {
  const NamedTensors delta = rank_three_delta();
  const PeftExporter exporter(delta);
  // Independently: the squared singular values beyond the rank, over all layers.
  double tail = 0, total = 0;
  for (const auto& [name, matrix] : delta) {
    const at::Tensor s = at::linalg_svdvals(matrix.to(at::kDouble));
    total += s.square().sum().item<double>();
    tail += s.narrow(0, 2, s.size(0) - 2).square().sum().item<double>();
  }
  CHECK(exporter.relative_truncation_error(2) == Approx(tail / total).epsilon(1e-4));
  CHECK(exporter.relative_truncation_error(3) < 1e-10);
  CHECK(exporter.relative_truncation_error(1) > exporter.relative_truncation_error(2));
}

TEST_CASE("a PEFT export above a layer's size pads it with zeros", "[peft]") {
  const NamedTensors delta = rank_three_delta();
  const fs::path directory = test::fresh_directory("peft-padded");
  PeftExporter(delta).write(directory, 6, 6.0, "test-model");  // fc1 is 6 × 5: at most rank 5
  const SafetensorsFile file = load_safetensors(directory / "adapter_model.safetensors");
  const at::Tensor a = file.tensors.at("base_model.model.encoder.fc1.lora_A.weight");
  CHECK(a.sizes().vec() == std::vector<std::int64_t>{6, 5});
  CHECK(a[5].abs().max().item<float>() == 0.0f);
  CHECK(at::allclose(product(file, "encoder.fc1", 1.0), delta.at("encoder.fc1"), 1e-4, 1e-4));
}

TEST_CASE("a directory that is not a PEFT adapter is refused", "[peft]") {
  const fs::path directory = test::fresh_directory("peft-not-peft");
  fs::create_directories(directory);
  std::ofstream(directory / "adapter_config.json") << R"({"peft_type": "PREFIX_TUNING"})";
  CHECK_THROWS_WITH(load_peft_adapter(directory),
                    Catch::Matchers::Contains("not a PEFT LoRA config"));
}

TEST_CASE("a PEFT export says the base's task type and fan_in_fan_out, factors as PEFT's",
          "[peft]") {
  const NamedTensors delta = rank_three_delta();
  const fs::path directory = test::fresh_directory("peft-described");
  PeftExporter(delta).write(directory, 3, 16.0, PeftBase{"/models/base", "CAUSAL_LM", true});
  std::ifstream config_file(directory / "adapter_config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  CHECK(config["base_model_name_or_path"] == "/models/base");
  CHECK(config["task_type"] == "CAUSAL_LM");
  CHECK(config["fan_in_fan_out"] == true);
  // PEFT keeps lora_A r × in and lora_B out × r for such a base too, and
  // transposes B·A itself when it merges.
  const SafetensorsFile file = load_safetensors(directory / "adapter_model.safetensors");
  CHECK(file.tensors.at("base_model.model.encoder.fc1.lora_A.weight").sizes().vec() ==
        std::vector<std::int64_t>{3, 5});
  CHECK(file.tensors.at("base_model.model.encoder.fc1.lora_B.weight").sizes().vec() ==
        std::vector<std::int64_t>{6, 3});
  CHECK(at::allclose(product(file, "encoder.fc1", 16.0 / 3), delta.at("encoder.fc1"), 1e-4, 1e-4));
}

TEST_CASE("a run's adapters of a model without a Hugging Face architecture name it by its id",
          "[peft]") {
  const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("linear");
  auto model = keep_library_alive(
      plugin.factory->create(ConfigTable(),
                             ModelContext{ModelContext::Role::kServer, -1, 2, 1, {}}),
      plugin.factory);
  const ModelSpec spec = model->spec();
  const fs::path run = test::fresh_directory("peft-run-linear");
  FederationConfig federation;
  federation.ranks = {2, 2};
  NamedTensors delta;
  at::manual_seed(4);
  for (const TargetLayer& layer : spec.targets)
    delta[layer.name] = at::randn({layer.out_features, layer.in_features});
  MetricsWriter metrics(run);
  RunRecorder recorder(federation, spec, metrics);
  const nlohmann::json written = recorder.export_adapters(delta, *model);

  CHECK_FALSE(written.contains("peft_base"));
  CHECK(written["peft"].size() == 1);
  CHECK_FALSE(fs::exists(run / "peft" / "base"));  // the default writes nothing
  std::ifstream config_file(run / "peft" / "global" / "adapter_config.json");
  const nlohmann::json config = nlohmann::json::parse(config_file);
  CHECK(config["base_model_name_or_path"] == spec.model_id);
  CHECK(config["task_type"].is_null());
  CHECK(config["fan_in_fan_out"] == false);
}
