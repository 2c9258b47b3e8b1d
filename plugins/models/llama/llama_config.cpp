#include "llama_config.hpp"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorafed/error.hpp"

namespace lorafed::llama {
namespace {

// Far above any released model, low enough that no product of two sizes
// overflows and a hostile file cannot ask for a terabyte tensor by one field.
constexpr std::int64_t kMaxWidth = 1 << 18;
constexpr std::int64_t kMaxVocabulary = 1 << 22;
constexpr std::int64_t kMaxLayers = 1024;

std::int64_t integer(const nlohmann::json& json, const char* key, std::int64_t fallback,
                     const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const nlohmann::json& value = json.at(key);
  if (!value.is_number_integer())
    throw FormatError(where + ": '" + key + "' is not an integer: " + value.dump());
  return value.get<std::int64_t>();
}

double number(const nlohmann::json& json, const char* key, double fallback,
              const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const nlohmann::json& value = json.at(key);
  if (!value.is_number()) throw FormatError(where + ": '" + key + "' is not a number");
  return value.get<double>();
}

bool boolean(const nlohmann::json& json, const char* key, bool fallback, const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  if (!json.at(key).is_boolean()) throw FormatError(where + ": '" + key + "' is not true or false");
  return json.at(key).get<bool>();
}

std::string text(const nlohmann::json& json, const char* key, const std::string& fallback,
                 const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  if (!json.at(key).is_string()) throw FormatError(where + ": '" + key + "' is not a string");
  return json.at(key).get<std::string>();
}

void require(bool holds, const std::string& what) {
  if (!holds) throw ConfigError("llama model: " + what);
}

RopeScaling parse_rope_scaling(const nlohmann::json& json, const std::string& where) {
  RopeScaling scaling;
  if (!json.contains("rope_scaling") || json.at("rope_scaling").is_null()) return scaling;
  const nlohmann::json& entry = json.at("rope_scaling");
  if (!entry.is_object()) throw FormatError(where + ": 'rope_scaling' is not an object");
  // transformers ≥ 4.43 writes rope_type; older files write type.
  scaling.type = text(entry, "rope_type", text(entry, "type", "", where), where);
  if (scaling.type == "default") scaling.type.clear();
  if (!scaling.type.empty() && scaling.type != "linear" && scaling.type != "llama3") {
    throw ConfigError("llama model: " + where + ": rope_scaling type '" + scaling.type +
                      "' is not implemented (linear and llama3 are)");
  }
  scaling.factor = number(entry, "factor", 1, where);
  scaling.low_freq_factor = number(entry, "low_freq_factor", 1, where);
  scaling.high_freq_factor = number(entry, "high_freq_factor", 4, where);
  scaling.original_max_position_embeddings =
      integer(entry, "original_max_position_embeddings", 8192, where);
  return scaling;
}

}  // namespace

void LlamaConfig::validate() const {
  const auto within = [](std::int64_t value, std::int64_t limit) {
    return value >= 1 && value <= limit;
  };
  require(within(vocab_size, kMaxVocabulary),
          "vocab_size must lie in 1.." + std::to_string(kMaxVocabulary));
  require(
      within(hidden_size, kMaxWidth) && within(intermediate_size, kMaxWidth) &&
          within(head_dim, kMaxWidth),
      "hidden_size, intermediate_size and head_dim must lie in 1.." + std::to_string(kMaxWidth));
  require(within(num_hidden_layers, kMaxLayers),
          "num_hidden_layers must lie in 1.." + std::to_string(kMaxLayers));
  require(within(num_attention_heads, kMaxWidth) && within(num_key_value_heads, kMaxWidth),
          "num_attention_heads and num_key_value_heads must be positive");
  require(num_attention_heads % num_key_value_heads == 0,
          "num_key_value_heads (" + std::to_string(num_key_value_heads) +
              ") must divide num_attention_heads (" + std::to_string(num_attention_heads) + ")");
  require(q_size() <= kMaxWidth, "num_attention_heads × head_dim is too large");
  require(head_dim % 2 == 0, "head_dim must be even (rotary embeddings rotate pairs)");
  require(within(max_position_embeddings, 1 << 24), "max_position_embeddings must be positive");
  require(sliding_window >= 0, "sliding_window must not be negative");
  require(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, "rms_norm_eps must be positive");
  require(std::isfinite(rope_theta) && rope_theta > 1, "rope_theta must be above 1");
  if (!rope_scaling.type.empty()) {
    require(std::isfinite(rope_scaling.factor) && rope_scaling.factor >= 1 &&
                rope_scaling.factor <= 1e6,
            "rope_scaling factor must lie in [1, 1e6]");
  }
  if (rope_scaling.type == "llama3") {
    require(std::isfinite(rope_scaling.low_freq_factor) &&
                std::isfinite(rope_scaling.high_freq_factor) && rope_scaling.low_freq_factor > 0 &&
                rope_scaling.high_freq_factor > rope_scaling.low_freq_factor,
            "rope_scaling needs 0 < low_freq_factor < high_freq_factor");
    require(within(rope_scaling.original_max_position_embeddings, 1 << 24),
            "rope_scaling original_max_position_embeddings must be positive");
  }
  if (model_type == "qwen2") {
    require(qkv_bias && !o_bias, "a qwen2 model has biases on q, k and v and none on o_proj");
  } else {
    require(qkv_bias == o_bias,
            "a " + model_type + " model's attention_bias is on all of q, k, v and o_proj or none");
  }
  require(bos_token_id >= -1 && bos_token_id < vocab_size, "bos_token_id is not in the vocabulary");
  for (const std::int64_t id : eos_token_ids)
    require(id >= 0 && id < vocab_size,
            "eos_token_id " + std::to_string(id) + " is not in the vocabulary");
}

LlamaConfig parse_llama_config(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw FormatError(where + " is not a JSON object");
  LlamaConfig config;
  try {
    config.model_type = text(json, "model_type", "llama", where);
    if (config.model_type != "llama" && config.model_type != "mistral" &&
        config.model_type != "qwen2") {
      throw ConfigError("llama model: " + where + ": model_type '" + config.model_type +
                        "' is not a Llama-family model (llama, mistral, qwen2)");
    }
    const std::string activation = text(json, "hidden_act", "silu", where);
    if (activation != "silu") {
      throw ConfigError("llama model: " + where + ": hidden_act '" + activation +
                        "' is not SwiGLU's silu");
    }
    config.vocab_size = integer(json, "vocab_size", 0, where);
    config.hidden_size = integer(json, "hidden_size", 0, where);
    config.intermediate_size = integer(json, "intermediate_size", 0, where);
    config.num_hidden_layers = integer(json, "num_hidden_layers", 0, where);
    config.num_attention_heads = integer(json, "num_attention_heads", 0, where);
    config.num_key_value_heads =
        integer(json, "num_key_value_heads", config.num_attention_heads, where);
    config.head_dim = integer(
        json, "head_dim",
        config.num_attention_heads > 0 ? config.hidden_size / config.num_attention_heads : 0,
        where);
    config.max_position_embeddings = integer(json, "max_position_embeddings", 2048, where);
    const bool sliding =
        config.model_type == "mistral" ||
        (config.model_type == "qwen2" && boolean(json, "use_sliding_window", false, where));
    if (sliding) config.sliding_window = integer(json, "sliding_window", 0, where);
    config.rms_norm_eps = number(json, "rms_norm_eps", 1e-6, where);
    config.rope_theta = number(json, "rope_theta", 10000, where);
    config.rope_scaling = parse_rope_scaling(json, where);
    config.tie_word_embeddings = boolean(json, "tie_word_embeddings", false, where);
    if (config.model_type == "qwen2") {
      config.qkv_bias = true;
    } else {
      config.qkv_bias = config.o_bias = boolean(json, "attention_bias", false, where);
    }
    config.mlp_bias = boolean(json, "mlp_bias", false, where);
    config.bos_token_id = integer(json, "bos_token_id", -1, where);
    if (json.contains("eos_token_id") && json.at("eos_token_id").is_array()) {
      for (const nlohmann::json& id : json.at("eos_token_id")) {
        if (!id.is_number_integer())
          throw FormatError(where + ": 'eos_token_id' holds a non-integer");
        config.eos_token_ids.push_back(id.get<std::int64_t>());
      }
    } else if (const std::int64_t eos = integer(json, "eos_token_id", -1, where); eos != -1) {
      config.eos_token_ids.push_back(eos);
    }
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(where + ": " + error.what());
  }
  try {
    config.validate();
  } catch (const ConfigError& error) {
    throw ConfigError(std::string(error.what()) + " (" + where + ")");
  }
  return config;
}

LlamaConfig read_llama_config(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in) throw ConfigError("llama model: " + config_json.string() + " cannot be opened");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(config_json.string() + " is not valid JSON: " + error.what());
  }
  return parse_llama_config(json, config_json.string());
}

nlohmann::json to_hf_config(const LlamaConfig& config) {
  nlohmann::json json = {
      {"model_type", config.model_type},
      {"vocab_size", config.vocab_size},
      {"hidden_size", config.hidden_size},
      {"intermediate_size", config.intermediate_size},
      {"num_hidden_layers", config.num_hidden_layers},
      {"num_attention_heads", config.num_attention_heads},
      {"num_key_value_heads", config.num_key_value_heads},
      {"head_dim", config.head_dim},
      {"max_position_embeddings", config.max_position_embeddings},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.rms_norm_eps},
      {"rope_theta", config.rope_theta},
      {"tie_word_embeddings", config.tie_word_embeddings},
      {"mlp_bias", config.mlp_bias},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
  if (config.model_type == "qwen2") {
    json["architectures"] = {"Qwen2ForCausalLM"};
    json["use_sliding_window"] = config.sliding_window > 0;
    json["sliding_window"] = config.sliding_window > 0 ? config.sliding_window : 4096;
  } else {
    json["architectures"] = {config.model_type == "mistral" ? "MistralForCausalLM"
                                                            : "LlamaForCausalLM"};
    json["attention_bias"] = config.qkv_bias;
    if (config.model_type == "mistral")
      json["sliding_window"] =
          config.sliding_window > 0 ? nlohmann::json(config.sliding_window) : nlohmann::json();
  }
  if (config.rope_scaling.type.empty()) {
    json["rope_scaling"] = nullptr;
  } else {
    json["rope_scaling"] = {{"rope_type", config.rope_scaling.type},
                            {"factor", config.rope_scaling.factor}};
    if (config.rope_scaling.type == "llama3") {
      json["rope_scaling"]["low_freq_factor"] = config.rope_scaling.low_freq_factor;
      json["rope_scaling"]["high_freq_factor"] = config.rope_scaling.high_freq_factor;
      json["rope_scaling"]["original_max_position_embeddings"] =
          config.rope_scaling.original_max_position_embeddings;
    }
  }
  if (config.bos_token_id >= 0) json["bos_token_id"] = config.bos_token_id;
  if (config.eos_token_ids.size() == 1) {
    json["eos_token_id"] = config.eos_token_ids.front();
  } else if (!config.eos_token_ids.empty()) {
    json["eos_token_id"] = config.eos_token_ids;
  }
  return json;
}

}  // namespace lorafed::llama
