// The `llama` model as a plugin: pretraining a tiny base (tokenizer and
// model, cached as a Hugging Face folder), loading a user's folder, PEFT
// module names, training and evaluating the adapter, and the base and
// adapters a run exports.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lorafed/error.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/safetensors.hpp"
#include "src/metrics_writer.hpp"
#include "src/plugin_registry.hpp"
#include "src/server/run_recorder.hpp"
#include "tokenizer.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

// A corpus of few characters, so that a tokenizer of 300 pieces (the 256
// bytes, three specials, the characters and some merges) covers it.
fs::path write_corpus(const fs::path& directory) {
  fs::create_directories(directory);
  std::ofstream out(directory / "text.txt");
  for (int i = 0; i < 60; ++i) {
    out << "the sum of " << i << " and " << (i * 7) % 13 << " is " << i + (i * 7) % 13
        << ". add the numbers and tell the sum.\n";
  }
  return directory;
}

const std::string kTinyShape =
    "vocab_size = 300\nhidden_size = 16\nnum_hidden_layers = 2\nintermediate_size = 32\n"
    "num_attention_heads = 2\nnum_key_value_heads = 1\nmax_position_embeddings = 256\n"
    "pretrain_context = 32\npretrain_steps = 2\npretrain_batch_size = 2\n"
    "train_per_task = 6\ntest_per_task = 2\neval_batch_size = 4\n";

std::shared_ptr<ModelBackend> make_llama(const std::string& config_text, ModelContext::Role role) {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("llama");
  const auto config = ConfigTable::parse_string(config_text, "test.toml");
  return keep_library_alive(
      plugin.factory->create(
          config, ModelContext{role, role == ModelContext::Role::kClient ? 0 : -1, 2, 7, {}}),
      plugin.factory);
}

std::string tiny_pretrained(const fs::path& root) {
  return kTinyShape + "corpus_dir = \"" + write_corpus(root / "corpus").string() +
         "\"\ncache_dir = \"" + (root / "cache").string() + "\"\n";
}

}  // namespace

TEST_CASE("the llama backend pretrains a base into its cache and trains an adapter on it",
          "[llama]") {
  const fs::path root = test::fresh_directory("llama-backend-pretrain");
  auto client = make_llama(tiny_pretrained(root), ModelContext::Role::kClient);
  // The cache holds one model folder, as save_pretrained writes one.
  std::vector<fs::path> cached;
  for (const auto& entry : fs::directory_iterator(root / "cache")) cached.push_back(entry.path());
  REQUIRE(cached.size() == 1);
  CHECK(cached.front().filename().string().starts_with("llama-base-"));
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.model"}) {
    CHECK(fs::exists(cached.front() / file));
  }
  const auto tokenizer = text::load_tokenizer(cached.front());
  CHECK(tokenizer->vocab_size() == 300);
  CHECK(tokenizer->decode(tokenizer->encode("the sum of 12 and 3")) == "the sum of 12 and 3");

  const ModelSpec spec = client->spec();
  REQUIRE(spec.targets.size() == 4);  // q_proj and v_proj in 2 layers
  CHECK(spec.targets[0].name == "model.layers.0.self_attn.q_proj");
  CHECK(spec.targets[1].name == "model.layers.0.self_attn.v_proj");
  CHECK(spec.targets[1].out_features == 8);  // one key/value head of 8
  CHECK(spec.model_id.starts_with("llama-2x16-"));
  REQUIRE(client->num_train_examples() > 0);

  Adapter start = init_adapter(spec, 2, 4.0, 3);
  client->install_adapter(start);
  TrainOptions options;
  options.optimizer = "adamw";
  options.learning_rate = 0.01;
  options.local_steps = 2;
  options.batch_size = 2;
  const TrainReport report = client->train(ParameterGroup::kAdapter, options, 1);
  CHECK(report.steps == 2);
  CHECK(std::isfinite(report.mean_loss));
  for (const auto& [name, factors] : client->adapter().layers) {
    CHECK_FALSE(at::equal(factors.b, start.layers.at(name).b));
  }
  const EvalReport evaluation = client->evaluate();
  CHECK(evaluation.num_examples > 0);
  CHECK(std::isfinite(evaluation.loss));
  CHECK(evaluation.metrics.at("exact_match") >= 0.0);
  CHECK(evaluation.metrics.at("exact_match") <= 1.0);

  // A second backend of the same configuration loads the cached base.
  auto again = make_llama(tiny_pretrained(root), ModelContext::Role::kServer);
  CHECK(again->spec().model_id == spec.model_id);
  const std::string all_seven =
      "targets = [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", "
      "\"up_proj\", \"down_proj\"]\n";
  CHECK(make_llama(tiny_pretrained(root) + all_seven, ModelContext::Role::kServer)
            ->spec()
            .targets.size() == 14);
  CHECK_THROWS_WITH(
      make_llama(tiny_pretrained(root) + "targets = [\"c_attn\"]\n", ModelContext::Role::kServer),
      Catch::Contains("names no module: 'c_attn'"));
  CHECK_THROWS_WITH(
      make_llama(tiny_pretrained(root) + "dtype = \"int8\"\n", ModelContext::Role::kServer),
      Catch::Contains("dtype"));
}

TEST_CASE("a llama run exports the base folder and PEFT adapters under transformers' names",
          "[llama][peft]") {
  const fs::path root = test::fresh_directory("llama-backend-export");
  auto server = make_llama(tiny_pretrained(root), ModelContext::Role::kServer);
  const ModelSpec spec = server->spec();
  FederationConfig federation;
  federation.alpha = 16;
  federation.ranks = {2, 4};
  NamedTensors delta;
  at::manual_seed(3);
  for (const TargetLayer& layer : spec.targets)
    delta[layer.name] = at::randn({layer.out_features, layer.in_features}) * 0.1;
  const fs::path run = root / "run";
  MetricsWriter metrics(run);
  RunRecorder recorder(federation, spec, metrics);
  const nlohmann::json written = recorder.export_adapters(delta, *server);
  CHECK(written["peft_base"] == "peft/base");
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.model"}) {
    CHECK(fs::exists(run / "peft" / "base" / file));
  }
  std::ifstream base_config(run / "peft" / "base" / "config.json");
  const nlohmann::json config = nlohmann::json::parse(base_config);
  CHECK(config["architectures"] == nlohmann::json::array({"LlamaForCausalLM"}));
  CHECK(config["model_type"] == "llama");
  CHECK(config["num_key_value_heads"] == 1);

  std::ifstream adapter_config_file(run / "peft" / "rank-2" / "adapter_config.json");
  const nlohmann::json adapter_config = nlohmann::json::parse(adapter_config_file);
  CHECK(adapter_config["task_type"] == "CAUSAL_LM");
  CHECK(adapter_config["fan_in_fan_out"] == false);
  CHECK(adapter_config["r"] == 2);
  const SafetensorsFile adapter =
      load_safetensors(run / "peft" / "rank-2" / "adapter_model.safetensors");
  const std::string q = "base_model.model.model.layers.0.self_attn.q_proj";
  REQUIRE(adapter.tensors.contains(q + ".lora_A.weight"));
  CHECK(adapter.tensors.at(q + ".lora_A.weight").sizes().vec() == std::vector<std::int64_t>{2, 16});
  CHECK(adapter.tensors.at(q + ".lora_B.weight").sizes().vec() == std::vector<std::int64_t>{16, 2});
  CHECK(adapter.tensors.at("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")
            .sizes()
            .vec() == std::vector<std::int64_t>{8, 2});
}

TEST_CASE("a llama checkpoint folder without a tokenizer is refused, naming what was looked for",
          "[llama]") {
  const fs::path root = test::fresh_directory("llama-backend-no-tokenizer");
  // A pretrained base's folder, less its tokenizer.
  make_llama(tiny_pretrained(root), ModelContext::Role::kServer);
  fs::path folder;
  for (const auto& entry : fs::directory_iterator(root / "cache")) folder = entry.path();
  fs::copy(folder, root / "user", fs::copy_options::recursive);
  fs::remove(root / "user" / "tokenizer.model");
  CHECK_THROWS_WITH(make_llama("checkpoint = \"" + (root / "user").string() + "\"\n",
                               ModelContext::Role::kServer),
                    Catch::Contains("tokenizer.json") && Catch::Contains("tokenizer.model"));
  CHECK_THROWS_WITH(make_llama("checkpoint = \"" + (root / "absent").string() + "\"\n",
                               ModelContext::Role::kServer),
                    Catch::Contains("absent"));
}
