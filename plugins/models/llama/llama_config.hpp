#pragma once
// The Llama-family configuration as Hugging Face's config.json states it
// (LlamaConfig, MistralConfig, Qwen2Config): the sizes and options of
// LlamaForCausalLM and its relatives. Every number comes from a file a user
// brought, so each is checked before it sizes a tensor.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lorafed::llama {

// How rotary position embeddings stretch past the pretraining context:
// none; "linear" (positions divided by factor); "llama3" (Llama 3.1's
// wavelength-dependent blend: docs/algorithms.md §Llama-family models).
struct RopeScaling {
  std::string type;  // "", "linear" or "llama3"
  double factor = 1;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  std::int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  std::string model_type = "llama";  // "llama", "mistral" or "qwen2"
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;  // grouped-query attention; = heads without
  std::int64_t head_dim = 0;             // hidden_size / heads unless stated
  std::int64_t max_position_embeddings = 2048;
  std::int64_t sliding_window = 0;  // Mistral; 0: none (longer inputs are refused)
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Llama's attention_bias; always for Qwen2
  bool o_bias = false;    // Llama's attention_bias; never for Qwen2
  bool mlp_bias = false;
  std::int64_t bos_token_id = -1;  // -1: none
  std::vector<std::int64_t> eos_token_ids;

  std::int64_t kv_groups() const { return num_attention_heads / num_key_value_heads; }
  std::int64_t q_size() const { return num_attention_heads * head_dim; }
  std::int64_t kv_size() const { return num_key_value_heads * head_dim; }
  // Throws ConfigError naming the first size or option out of bounds.
  void validate() const;
};

// Reads config.json's fields (`where` names the file in errors). Refuses an
// architecture or activation this backend does not implement, naming it.
LlamaConfig parse_llama_config(const nlohmann::json& json, const std::string& where);
LlamaConfig read_llama_config(const std::filesystem::path& config_json);

// config.json as transformers reads it back into the same model.
nlohmann::json to_hf_config(const LlamaConfig& config);

}  // namespace lorafed::llama
