// Writes tiny Llama-family checkpoints with random weights and lorafed's
// logits for them, for check_llama_forward.py to recompute with plain torch
// from the equations. One folder per variant under OUT_DIR:
//   <variant>/config.json, model.safetensors   the checkpoint
//   <variant>/expected.safetensors             tokens, logits of the base and
//                                              of the base with an adapter,
//                                              the adapter's factors
//
//   lorafed_llama_logits OUT_DIR
#include <ATen/ATen.h>

#include <cstdio>
#include <exception>
#include <filesystem>

#include "llama_checkpoint.hpp"
#include "llama_model.hpp"
#include "lorafed/safetensors.hpp"

using namespace lorafed;
using namespace lorafed::llama;

namespace {

LlamaConfig base_config() {
  LlamaConfig config;
  config.vocab_size = 50;
  config.hidden_size = 24;
  config.intermediate_size = 40;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 6;
  config.head_dim = 4;
  config.max_position_embeddings = 64;
  config.rms_norm_eps = 1e-5;
  config.bos_token_id = 1;
  config.eos_token_ids = {2};
  return config;
}

void write_variant(const std::filesystem::path& folder, const LlamaConfig& config,
                   std::uint64_t seed) {
  at::manual_seed(static_cast<std::int64_t>(seed));
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(config)) {
    at::Tensor tensor = at::randn(entry.shape) * 0.2;
    if (entry.name.ends_with("layernorm.weight") || entry.name == "model.norm.weight")
      tensor += 1.0;
    weights[entry.name] = tensor;
  }
  write_llama_checkpoint(folder, config, weights);

  // Sequences longer than the llama3 variant's original context, so scaled
  // frequencies matter.
  const at::Tensor tokens = at::randint(config.vocab_size, {2, 23}, at::kLong);
  LoraLlama model(config, weights,
                  {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                   "model.layers.1.self_attn.v_proj", "model.layers.1.self_attn.o_proj",
                   "model.layers.0.mlp.gate_proj", "model.layers.1.mlp.down_proj"});
  NamedTensors expected = {{"tokens", tokens}, {"logits_base", model.forward(tokens)}};
  Adapter adapter;
  adapter.alpha = 6;
  for (const TargetLayer& layer : model.spec("reference").targets) {
    const at::Tensor a = at::randn({3, layer.in_features}) * 0.3;
    const at::Tensor b = at::randn({layer.out_features, 3}) * 0.3;
    adapter.layers[layer.name] = {a, b};
    expected[layer.name + ".lora_A"] = a;
    expected[layer.name + ".lora_B"] = b;
  }
  model.install_adapter(adapter);
  expected["logits_adapted"] = model.forward(tokens);
  save_safetensors(folder / "expected.safetensors", expected, {{"lora_alpha", "6"}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path out = argv[1];
    // Grouped-query attention (6 heads on 2), attention biases (q, k, v and
    // o), untied head.
    LlamaConfig gqa = base_config();
    gqa.num_key_value_heads = 2;
    gqa.qkv_bias = gqa.o_bias = true;
    write_variant(out / "gqa-bias-untied", gqa, 1);
    // Multi-head attention, a tied head, Llama 3.1's rotary scaling whose
    // original context (8) the 23 positions pass, all biases (attention_bias
    // and mlp_bias).
    LlamaConfig llama3 = base_config();
    llama3.num_key_value_heads = 6;
    llama3.tie_word_embeddings = true;
    llama3.rope_theta = 500000;
    llama3.rope_scaling = {"llama3", 4, 1, 4, 8};
    llama3.qkv_bias = llama3.o_bias = llama3.mlp_bias = true;
    write_variant(out / "mha-tied-llama3", llama3, 2);
    // Qwen2: q/k/v biases but none on o, one key/value head, linear scaling.
    LlamaConfig qwen = base_config();
    qwen.model_type = "qwen2";
    qwen.num_key_value_heads = 1;
    qwen.qkv_bias = true;
    qwen.rope_scaling = {"linear", 2, 1, 4, 8192};
    write_variant(out / "qwen2-mqa-linear", qwen, 3);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lorafed_llama_logits: %s\n", error.what());
    return 1;
  }
  return 0;
}
