// The `llama` model: LlamaForCausalLM's checkpoint layout as transformers
// names it, loading (one file, shards, F16/BF16, refusals), rotary
// frequencies, LoRA's identity start and merging, and KV-cache generation.
// The forward pass itself is checked against plain PyTorch in
// tests/python/llama_forward_check.sh.
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "generation.hpp"
#include "llama_checkpoint.hpp"
#include "llama_config.hpp"
#include "llama_model.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
using namespace lorafed::llama;
namespace fs = std::filesystem;

namespace {

// Grouped-query attention (4 query heads on 2 key/value heads), biases on,
// untied head: every option a term of the forward pass could hide behind.
LlamaConfig tiny_config() {
  LlamaConfig config;
  config.vocab_size = 40;
  config.hidden_size = 16;
  config.intermediate_size = 24;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 4;
  config.max_position_embeddings = 64;
  config.qkv_bias = true;
  config.o_bias = true;
  config.eos_token_ids = {2};
  config.bos_token_id = 1;
  return config;
}

// Random weights, RMSNorm gains near one; every value exactly representable
// in bfloat16 (and so in float16 at these magnitudes), so F16 and BF16 copies
// of the checkpoint hold the same numbers.
NamedTensors random_weights(const LlamaConfig& config, std::uint64_t seed) {
  at::manual_seed(static_cast<std::int64_t>(seed));
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(config)) {
    at::Tensor tensor = at::randn(entry.shape) * 0.3;
    if (entry.name.ends_with("layernorm.weight") || entry.name == "model.norm.weight")
      tensor += 1.0;
    weights[entry.name] = tensor.to(at::kBFloat16).to(at::kFloat);
  }
  return weights;
}

at::Tensor tokens_for(const LlamaConfig& config, std::int64_t batch, std::int64_t length) {
  at::manual_seed(99);
  return at::randint(config.vocab_size, {batch, length}, at::kLong);
}

void write_config(const fs::path& folder, const nlohmann::json& json) {
  std::ofstream(folder / "config.json") << json.dump();
}

}  // namespace

TEST_CASE("the llama checkpoint layout is LlamaForCausalLM's as transformers names it", "[llama]") {
  LlamaConfig config = tiny_config();
  const auto layout = checkpoint_layout(config);
  std::map<std::string, std::vector<std::int64_t>> shapes;
  for (const auto& entry : layout) shapes[entry.name] = entry.shape;
  // LlamaDecoderLayer's parameters, written out: q is heads × head_dim = 16
  // rows, k and v kv_heads × head_dim = 8, o back to hidden; nn.Linear is out × in.
  const std::map<std::string, std::vector<std::int64_t>> expected_layer = {
      {"input_layernorm.weight", {16}},   {"self_attn.q_proj.weight", {16, 16}},
      {"self_attn.q_proj.bias", {16}},    {"self_attn.k_proj.weight", {8, 16}},
      {"self_attn.k_proj.bias", {8}},     {"self_attn.v_proj.weight", {8, 16}},
      {"self_attn.v_proj.bias", {8}},     {"self_attn.o_proj.weight", {16, 16}},
      {"self_attn.o_proj.bias", {16}},    {"post_attention_layernorm.weight", {16}},
      {"mlp.gate_proj.weight", {24, 16}}, {"mlp.up_proj.weight", {24, 16}},
      {"mlp.down_proj.weight", {16, 24}}};
  for (int layer = 0; layer < 2; ++layer) {
    for (const auto& [suffix, shape] : expected_layer) {
      const std::string name = "model.layers." + std::to_string(layer) + "." + suffix;
      INFO(name);
      REQUIRE(shapes.contains(name));
      CHECK(shapes.at(name) == shape);
    }
  }
  CHECK(shapes.at("model.embed_tokens.weight") == std::vector<std::int64_t>{40, 16});
  CHECK(shapes.at("model.norm.weight") == std::vector<std::int64_t>{16});
  CHECK(shapes.at("lm_head.weight") == std::vector<std::int64_t>{40, 16});
  CHECK(layout.size() == 1 + 2 * expected_layer.size() + 2);
  config.tie_word_embeddings = true;
  config.qkv_bias = false;
  config.o_bias = false;
  const auto tied = checkpoint_layout(config);
  CHECK(std::none_of(tied.begin(), tied.end(),
                     [](const TensorLayout& e) { return e.name == "lm_head.weight"; }));
  CHECK(std::none_of(tied.begin(), tied.end(),
                     [](const TensorLayout& e) { return e.name.ends_with(".bias"); }));
  CHECK(layer_projections(1).front() == "model.layers.1.self_attn.q_proj");
}

TEST_CASE("config.json is read as transformers writes it, and bad numbers are refused", "[llama]") {
  const nlohmann::json smollm = {{"architectures", {"LlamaForCausalLM"}},
                                 {"model_type", "llama"},
                                 {"vocab_size", 49152},
                                 {"hidden_size", 576},
                                 {"intermediate_size", 1536},
                                 {"num_hidden_layers", 30},
                                 {"num_attention_heads", 9},
                                 {"num_key_value_heads", 3},
                                 {"max_position_embeddings", 8192},
                                 {"rms_norm_eps", 1e-5},
                                 {"rope_theta", 100000},
                                 {"tie_word_embeddings", true},
                                 {"hidden_act", "silu"},
                                 {"bos_token_id", 1},
                                 {"eos_token_id", 2},
                                 {"rope_scaling", nullptr}};
  const LlamaConfig config = parse_llama_config(smollm, "smollm");
  CHECK(config.head_dim == 64);
  CHECK(config.kv_groups() == 3);
  CHECK(config.tie_word_embeddings);
  CHECK(config.eos_token_ids == std::vector<std::int64_t>{2});
  CHECK(parse_llama_config(to_hf_config(config), "again").head_dim == 64);

  nlohmann::json llama3 = smollm;
  llama3["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  llama3["eos_token_id"] = {128001, 128008, 128009};
  llama3["vocab_size"] = 128256;
  const LlamaConfig three = parse_llama_config(llama3, "llama3");
  CHECK(three.rope_scaling.type == "llama3");
  CHECK(three.eos_token_ids.size() == 3);

  nlohmann::json qwen = smollm;
  qwen["model_type"] = "qwen2";
  const LlamaConfig q = parse_llama_config(qwen, "qwen");
  CHECK(q.qkv_bias);
  CHECK_FALSE(q.o_bias);

  const auto refused = [&](const char* key, const nlohmann::json& value, const char* message) {
    nlohmann::json bad = smollm;
    bad[key] = value;
    INFO(key << " = " << value.dump());
    CHECK_THROWS_WITH(parse_llama_config(bad, "bad.json"), Catch::Contains(message));
  };
  refused("hidden_act", "gelu", "hidden_act 'gelu'");
  refused("model_type", "gemma", "model_type 'gemma'");
  refused("num_key_value_heads", 4, "must divide num_attention_heads");
  refused("vocab_size", 1LL << 40, "vocab_size must lie in");
  refused("hidden_size", -576, "must lie in");
  refused("num_hidden_layers", "30", "'num_hidden_layers' is not an integer");
  refused("rms_norm_eps", 0, "rms_norm_eps must be positive");
  refused("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4}}, "'yarn' is not implemented");
  refused("eos_token_id", 49152, "eos_token_id 49152 is not in the vocabulary");
}

TEST_CASE("llama3 rotary scaling keeps short wavelengths, divides long ones and blends between",
          "[llama]") {
  LlamaConfig config = tiny_config();
  config.head_dim = 64;
  config.num_attention_heads = 1;
  config.num_key_value_heads = 1;
  config.rope_theta = 500000;
  config.rope_scaling = {"llama3", 8, 1, 4, 8192};
  const at::Tensor plain = 1.0 / at::pow(500000.0, at::arange(0, 64, 2).to(at::kDouble) / 64.0);
  const at::Tensor scaled = inverse_frequencies(config).to(at::kDouble);
  REQUIRE(scaled.size(0) == 32);
  for (std::int64_t j = 0; j < 32; ++j) {
    const double f = plain[j].item<double>();
    const double wavelength = 2 * M_PI / f;
    double expected = f;  // wavelength < 8192 / 4: kept
    if (wavelength > 8192.0)
      expected = f / 8.0;             // longer than 8192 / 1: divided
    else if (wavelength >= 2048.0) {  // between: blended
      const double smooth = (8192.0 / wavelength - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * f / 8.0 + smooth * f;
    }
    INFO("j = " << j << ", wavelength " << wavelength);
    CHECK(scaled[j].item<double>() == Approx(expected).epsilon(1e-5));
  }
  config.rope_scaling = {"linear", 4, 1, 4, 8192};
  CHECK(inverse_frequencies(config)[5].item<double>() ==
        Approx(plain[5].item<double>() / 4).epsilon(1e-5));
}

TEST_CASE("one file, shards, F16 and BF16 checkpoints load to the same model", "[llama]") {
  const LlamaConfig config = tiny_config();
  const NamedTensors weights = random_weights(config, 1);
  const at::Tensor tokens = tokens_for(config, 2, 7);
  const fs::path root = test::fresh_directory("llama-formats");
  write_llama_checkpoint(root / "single", config, weights);
  write_llama_checkpoint(root / "sharded", config, weights, /*shard_bytes=*/4096);
  NamedTensors half;
  NamedTensors brain;
  for (const auto& [name, tensor] : weights) {
    half[name] = tensor.to(at::kHalf);
    brain[name] = tensor.to(at::kBFloat16);
  }
  write_llama_checkpoint(root / "f16", config, half);
  write_llama_checkpoint(root / "bf16", config, brain);
  REQUIRE(fs::exists(root / "sharded" / "model.safetensors.index.json"));
  REQUIRE_FALSE(fs::exists(root / "sharded" / "model.safetensors"));
  std::int64_t shards = 0;
  for (const auto& entry : fs::directory_iterator(root / "sharded"))
    shards += entry.path().filename().string().starts_with("model-");
  REQUIRE(shards >= 3);

  const at::Tensor expected = LoraLlama(config, weights, {}).forward(tokens);
  for (const char* folder : {"single", "sharded", "f16", "bf16"}) {
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      INFO(folder << " as " << c10::toString(dtype));
      const LlamaCheckpoint loaded = read_llama_checkpoint(root / folder, dtype);
      CHECK(loaded.config.qkv_bias);
      CHECK(loaded.tensors.at("model.norm.weight").scalar_type() == dtype);
      CHECK(at::allclose(LoraLlama(loaded.config, loaded.tensors, {}).forward(tokens), expected,
                         1e-5, 1e-5));
    }
  }
}

TEST_CASE("a checkpoint that is not the configured model is refused, naming the tensor",
          "[llama]") {
  const LlamaConfig config = tiny_config();
  const NamedTensors weights = random_weights(config, 2);
  const fs::path root = test::fresh_directory("llama-refused");
  const auto refusal = [&](const std::string& case_name, const NamedTensors& tensors) {
    const fs::path folder = root / case_name;
    fs::create_directories(folder);
    write_config(folder, to_hf_config(config));
    save_safetensors(folder / "model.safetensors", tensors);
    try {
      read_llama_checkpoint(folder, at::kFloat);
    } catch (const FormatError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  NamedTensors missing = weights;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  CHECK_THAT(refusal("missing", missing),
             Catch::Contains("has no 'model.layers.1.mlp.up_proj.weight'"));
  NamedTensors extra = weights;
  extra["model.layers.2.mlp.up_proj.weight"] = at::zeros({24, 16});
  CHECK_THAT(refusal("extra", extra),
             Catch::Contains("holds 'model.layers.2.mlp.up_proj.weight', which is not part"));
  NamedTensors shaped = weights;
  shaped["model.layers.0.self_attn.k_proj.weight"] = at::zeros({16, 16});
  CHECK_THAT(
      refusal("shape", shaped),
      Catch::Contains("'model.layers.0.self_attn.k_proj.weight' is [16, 16], expected [8, 16]"));
  NamedTensors infinite = weights;
  infinite["model.norm.weight"] = infinite["model.norm.weight"].clone();
  infinite["model.norm.weight"][3] = std::numeric_limits<float>::infinity();
  CHECK_THAT(refusal("infinite", infinite),
             Catch::Contains("'model.norm.weight' holds NaN or Inf"));
  NamedTensors integer = weights;
  integer["model.norm.weight"] = at::ones({16}, at::kLong);
  CHECK_THAT(refusal("integer", integer), Catch::Contains("not F32, F16 or BF16"));
  CHECK_THAT(refusal("control", weights), Catch::Equals("accepted"));

  // An index that names a shard outside the folder, or omits a tensor its shard holds.
  const fs::path sharded = root / "sharded";
  write_llama_checkpoint(sharded, config, weights, 4096);
  nlohmann::json index;
  std::ifstream(sharded / "model.safetensors.index.json") >> index;
  index["weight_map"]["model.norm.weight"] = "../model-00001-of-00003.safetensors";
  std::ofstream(sharded / "model.safetensors.index.json") << index.dump();
  CHECK_THROWS_WITH(read_llama_checkpoint(sharded, at::kFloat),
                    Catch::Contains("names shard '../model-00001-of-00003.safetensors'"));
  index["weight_map"].erase("model.norm.weight");
  std::ofstream(sharded / "model.safetensors.index.json") << index.dump();
  CHECK_THROWS_WITH(read_llama_checkpoint(sharded, at::kFloat),
                    Catch::Contains("holds 'model.norm.weight', which"));
  CHECK_THROWS_AS(read_llama_checkpoint(root / "nowhere", at::kFloat), ConfigError);
}

TEST_CASE("a tied head reads the embedding, and a tied checkpoint's copy must equal it",
          "[llama]") {
  LlamaConfig config = tiny_config();
  config.tie_word_embeddings = true;
  const NamedTensors weights = random_weights(config, 3);
  const at::Tensor tokens = tokens_for(config, 1, 5);
  LlamaConfig untied = config;
  untied.tie_word_embeddings = false;
  NamedTensors with_head = weights;
  with_head["lm_head.weight"] = weights.at("model.embed_tokens.weight").clone();
  CHECK(at::allclose(LoraLlama(config, weights, {}).forward(tokens),
                     LoraLlama(untied, with_head, {}).forward(tokens)));

  const fs::path folder = test::fresh_directory("llama-tied");
  write_config(folder, to_hf_config(config));
  save_safetensors(folder / "model.safetensors", with_head);
  CHECK(read_llama_checkpoint(folder, at::kFloat).tensors.size() == weights.size());
  with_head["lm_head.weight"] = with_head["lm_head.weight"] + 1;
  save_safetensors(folder / "model.safetensors", with_head);
  CHECK_THROWS_WITH(read_llama_checkpoint(folder, at::kFloat),
                    Catch::Contains("lm_head.weight differs from model.embed_tokens.weight"));
}

TEST_CASE("a llama LoRA adapter with B = 0 leaves the output unchanged, and merging equals it",
          "[llama]") {
  const LlamaConfig config = tiny_config();
  const NamedTensors weights = random_weights(config, 4);
  const at::Tensor tokens = tokens_for(config, 2, 6);
  const std::vector<std::string> targets = {"model.layers.0.self_attn.q_proj",
                                            "model.layers.1.self_attn.v_proj",
                                            "model.layers.1.mlp.down_proj"};
  LoraLlama model(config, weights, targets);
  const at::Tensor base = model.forward(tokens);

  Adapter adapter;
  adapter.alpha = 8;
  for (const TargetLayer& layer : model.spec("tiny").targets) {
    adapter.layers[layer.name] = {at::randn({3, layer.in_features}) * 0.5,
                                  at::zeros({layer.out_features, 3})};
  }
  CHECK(model.spec("tiny").targets[0].out_features == 16);
  model.install_adapter(adapter);
  CHECK(at::allclose(model.forward(tokens), base));

  for (auto& [name, factors] : adapter.layers) factors.b = at::randn(factors.b.sizes()) * 0.5;
  model.install_adapter(adapter);
  const at::Tensor adapted = model.forward(tokens);
  CHECK_FALSE(at::allclose(adapted, base, 1e-3, 1e-3));

  LoraLlama merged(config, weights, targets);
  merged.install_merged_delta(adapter.dense_delta());
  CHECK(at::allclose(merged.forward(tokens), adapted, 1e-5, 1e-5));
  LoraLlama folded(config, weights, targets);
  folded.merge_into_base(adapter);
  CHECK(folded.base_changed());
  CHECK(at::allclose(folded.forward(tokens), adapted, 1e-5, 1e-5));
  // The shared base is untouched by the fold.
  CHECK(at::allclose(LoraLlama(config, weights, targets).forward(tokens), base));
}

TEST_CASE("generation with the KV cache equals generation without it, token for token", "[llama]") {
  LlamaConfig config = tiny_config();
  config.rope_scaling = {"llama3", 4, 1, 4, 16};  // positions past 16 are scaled
  const NamedTensors weights = random_weights(config, 5);
  LoraLlama model(config, weights, {});
  std::vector<std::vector<std::int64_t>> prompts = {
      {1, 5, 7, 9}, {1, 3}, {1, 5, 7, 8}, {1, 30, 31, 32, 33, 34, 35}, {1, 6, 7, 9}};
  GenerationOptions options;
  options.max_new_tokens = 20;
  options.batch_size = 2;
  const auto cached = generate(model, prompts, options);
  options.use_cache = false;
  const auto recomputed = generate(model, prompts, options);
  CHECK(cached == recomputed);
  for (const auto& output : cached) CHECK(output.size() == 20);
  // One prompt at a time gives the same continuations as batches.
  options.use_cache = true;
  options.batch_size = 1;
  CHECK(generate(model, prompts, options) == cached);

  // Sampling: the same seed, the same tokens, with or without the cache.
  options.temperature = 0.8;
  options.top_p = 0.9;
  options.seed = 7;
  options.batch_size = 8;
  const auto sampled = generate(model, prompts, options);
  options.use_cache = false;
  CHECK(generate(model, prompts, options) == sampled);
  options.seed = 8;
  CHECK(generate(model, prompts, options) != sampled);

  // A stop token ends a continuation and is not part of it.
  options = GenerationOptions{};
  options.max_new_tokens = 20;
  const std::int64_t third = cached[0][2];
  options.stop_tokens = {third};
  const auto stopped = generate(model, {prompts[0]}, options);
  const auto first_stop = std::find(cached[0].begin(), cached[0].end(), third);
  CHECK(stopped[0] == std::vector<std::int64_t>(cached[0].begin(), first_stop));

  options.max_new_tokens = 60;
  CHECK_THROWS_WITH(generate(model, prompts, options),
                    Catch::Contains("exceed max_position_embeddings (64)"));
}

TEST_CASE("top-p sampling never picks a token outside the nucleus", "[llama]") {
  LlamaConfig config = tiny_config();
  const NamedTensors weights = random_weights(config, 6);
  LoraLlama model(config, weights, {});
  const std::vector<std::int64_t> prompt = {1, 4, 9};
  const at::Tensor logits =
      model.forward(at::tensor(prompt, at::kLong).unsqueeze(0)).select(1, 2).squeeze(0);
  const at::Tensor probabilities = at::softmax(logits, -1);
  const auto [sorted, order] = probabilities.sort(-1, true);
  // top_p just below what the three most likely tokens hold: they are the nucleus.
  const std::set<std::int64_t> nucleus = {
      order[0].item<std::int64_t>(), order[1].item<std::int64_t>(), order[2].item<std::int64_t>()};
  const double top_three = sorted.slice(0, 0, 3).sum().item<double>();
  REQUIRE(1 - top_three > 0.2);  // enough outside for a missing cut to show
  const auto sample = [&](double top_p) {
    GenerationOptions options;
    options.max_new_tokens = 1;
    options.temperature = 1;
    options.top_p = top_p;
    std::set<std::int64_t> seen;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
      options.seed = seed;
      seen.insert(generate(model, {prompt}, options)[0][0]);
    }
    return seen;
  };
  CHECK(sample(top_three - 1e-4) == nucleus);
  const auto everything = sample(1.0);
  CHECK(std::any_of(everything.begin(), everything.end(),
                    [&](std::int64_t token) { return !nucleus.contains(token); }));
}
