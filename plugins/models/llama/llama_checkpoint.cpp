#include "llama_checkpoint.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"

namespace lorafed::llama {
namespace {

namespace fs = std::filesystem;

std::string shape_text(at::IntArrayRef shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Buffers older transformers versions saved beside the weights.
bool is_saved_buffer(const std::string& name) {
  return name.ends_with(".rotary_emb.inv_freq");
}

// A shard named by the index: a plain file name in the folder, nothing that
// climbs out of it.
fs::path shard_path(const fs::path& folder, const std::string& name, const std::string& where) {
  const fs::path file(name);
  if (name.empty() || file.filename() != file || name == "." || name == "..") {
    throw FormatError(where + " names shard '" + name + "', which is not a file in the folder");
  }
  return folder / file;
}

// Every tensor of the checkpoint by name, from one file or the shards of an index.
NamedTensors map_tensors(const fs::path& folder) {
  const fs::path single = folder / "model.safetensors";
  const fs::path index = folder / "model.safetensors.index.json";
  if (fs::exists(single)) return map_safetensors(single).tensors;
  if (!fs::exists(index)) {
    throw ConfigError("llama model: " + folder.string() +
                      " has neither model.safetensors nor model.safetensors.index.json");
  }
  const std::string where = index.string();
  nlohmann::json json;
  try {
    std::ifstream in(index);
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(where + " is not valid JSON: " + error.what());
  }
  if (!json.is_object() || !json.contains("weight_map") || !json.at("weight_map").is_object())
    throw FormatError(where + " has no weight_map object");
  std::map<std::string, std::vector<std::string>> by_shard;  // shard → tensor names
  for (const auto& [name, shard] : json.at("weight_map").items()) {
    if (!shard.is_string())
      throw FormatError(where + ": the shard of '" + name + "' is not a name");
    by_shard[shard.get<std::string>()].push_back(name);
  }
  NamedTensors tensors;
  for (const auto& [shard, names] : by_shard) {
    const fs::path file = shard_path(folder, shard, where);
    NamedTensors held = map_safetensors(file).tensors;
    for (const std::string& name : names) {
      const auto found = held.find(name);
      if (found == held.end()) {
        throw FormatError(where + " puts '" + name + "' in " + shard + ", which does not hold it");
      }
      tensors.emplace(name, found->second);
      held.erase(found);
    }
    for (const auto& [name, tensor] : held) {
      throw FormatError(file.string() + " holds '" + name + "', which " + where + " does not list");
    }
  }
  return tensors;
}

}  // namespace

std::vector<std::string> layer_projections(std::int64_t layer) {
  const std::string l = "model.layers." + std::to_string(layer) + ".";
  return {l + "self_attn.q_proj", l + "self_attn.k_proj", l + "self_attn.v_proj",
          l + "self_attn.o_proj", l + "mlp.gate_proj",    l + "mlp.up_proj",
          l + "mlp.down_proj"};
}

std::vector<TensorLayout> checkpoint_layout(const LlamaConfig& c) {
  const std::int64_t h = c.hidden_size;
  std::vector<TensorLayout> layout = {{"model.embed_tokens.weight", {c.vocab_size, h}}};
  const auto linear = [&](const std::string& name, std::int64_t out, std::int64_t in, bool bias) {
    layout.push_back({name + ".weight", {out, in}});
    if (bias) layout.push_back({name + ".bias", {out}});
  };
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    layout.push_back({l + "input_layernorm.weight", {h}});
    linear(l + "self_attn.q_proj", c.q_size(), h, c.qkv_bias);
    linear(l + "self_attn.k_proj", c.kv_size(), h, c.qkv_bias);
    linear(l + "self_attn.v_proj", c.kv_size(), h, c.qkv_bias);
    linear(l + "self_attn.o_proj", h, c.q_size(), c.o_bias);
    layout.push_back({l + "post_attention_layernorm.weight", {h}});
    linear(l + "mlp.gate_proj", c.intermediate_size, h, c.mlp_bias);
    linear(l + "mlp.up_proj", c.intermediate_size, h, c.mlp_bias);
    linear(l + "mlp.down_proj", h, c.intermediate_size, c.mlp_bias);
  }
  layout.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) layout.push_back({"lm_head.weight", {c.vocab_size, h}});
  return layout;
}

LlamaCheckpoint read_llama_checkpoint(const fs::path& folder, c10::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
    throw ConfigError("llama model: the base's dtype must be float32, float16 or bfloat16");
  if (!fs::is_directory(folder)) {
    throw ConfigError("llama model: checkpoint '" + folder.string() +
                      "' is not a folder (a Hugging Face model folder: config.json and "
                      "model.safetensors)");
  }
  LlamaCheckpoint checkpoint;
  checkpoint.config = read_llama_config(folder / "config.json");
  NamedTensors stored = map_tensors(folder);
  const std::string where = "llama model: checkpoint " + folder.string();

  at::Tensor tied_head;  // a tied checkpoint may still carry lm_head.weight
  if (checkpoint.config.tie_word_embeddings) {
    if (const auto head = stored.find("lm_head.weight"); head != stored.end()) {
      tied_head = head->second;
      stored.erase(head);
    }
  }
  for (const TensorLayout& entry : checkpoint_layout(checkpoint.config)) {
    const auto found = stored.find(entry.name);
    if (found == stored.end()) throw FormatError(where + " has no '" + entry.name + "'");
    const at::Tensor& tensor = found->second;
    if (tensor.sizes() != at::IntArrayRef(entry.shape)) {
      throw FormatError(where + ": '" + entry.name + "' is " + shape_text(tensor.sizes()) +
                        ", expected " + shape_text(entry.shape));
    }
    const auto type = tensor.scalar_type();
    if (type != at::kFloat && type != at::kHalf && type != at::kBFloat16) {
      throw FormatError(where + ": '" + entry.name + "' is " + c10::toString(type) +
                        ", not F32, F16 or BF16");
    }
    if (!at::isfinite(tensor).all().item<bool>())
      throw FormatError(where + ": '" + entry.name + "' holds NaN or Inf");
    checkpoint.tensors.emplace(entry.name, tensor.to(dtype).contiguous());
    stored.erase(found);
  }
  for (const auto& [name, tensor] : stored) {
    if (!is_saved_buffer(name)) {
      throw FormatError(where + " holds '" + name + "', which is not part of this " +
                        checkpoint.config.model_type + " model (" +
                        std::to_string(checkpoint.config.num_hidden_layers) + " layers)");
    }
  }
  if (tied_head.defined() &&
      !(tied_head.sizes() == checkpoint.tensors.at("model.embed_tokens.weight").sizes() &&
        at::equal(tied_head.to(dtype), checkpoint.tensors.at("model.embed_tokens.weight")))) {
    throw FormatError(where +
                      ": tie_word_embeddings is true but lm_head.weight differs from "
                      "model.embed_tokens.weight");
  }
  return checkpoint;
}

void write_llama_checkpoint(const fs::path& folder, const LlamaConfig& config,
                            const NamedTensors& tensors, std::int64_t shard_bytes) {
  const std::vector<TensorLayout> layout = checkpoint_layout(config);
  if (tensors.size() != layout.size())
    throw Error("llama model: cannot write a checkpoint: tensors do not match the layout");
  for (const TensorLayout& entry : layout) {
    const auto found = tensors.find(entry.name);
    if (found == tensors.end() || found->second.sizes() != at::IntArrayRef(entry.shape))
      throw Error("llama model: cannot write '" + entry.name + "': missing or of the wrong shape");
  }
  fs::create_directories(folder);
  const auto write_text = [&](const std::string& name, const std::string& text) {
    const fs::path partial = folder / (name + ".partial");
    {
      std::ofstream out(partial, std::ios::trunc);
      out << text << "\n";
      if (!out.flush()) throw Error("llama model: cannot write " + partial.string());
    }
    fs::rename(partial, folder / name);
  };
  nlohmann::json hf = to_hf_config(config);
  const auto stored = tensors.begin()->second.scalar_type();
  hf["torch_dtype"] = stored == at::kBFloat16 ? "bfloat16"
                      : stored == at::kHalf   ? "float16"
                                              : "float32";
  write_text("config.json", hf.dump(2));
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (shard_bytes <= 0) {
    save_safetensors(folder / "model.safetensors", tensors, metadata);
    return;
  }
  // Shards in layout order, a new one once the current one would pass shard_bytes.
  std::vector<NamedTensors> shards(1);
  std::int64_t filled = 0;
  std::int64_t total = 0;
  for (const TensorLayout& entry : layout) {
    const at::Tensor& tensor = tensors.at(entry.name);
    const std::int64_t bytes = tensor.numel() * static_cast<std::int64_t>(tensor.element_size());
    if (filled > 0 && filled + bytes > shard_bytes) {
      shards.emplace_back();
      filled = 0;
    }
    shards.back().emplace(entry.name, tensor);
    filled += bytes;
    total += bytes;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}},
                          {"weight_map", nlohmann::json::object()}};
  char name[64];
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    save_safetensors(folder / name, shards[i], metadata);
    for (const auto& [tensor_name, tensor] : shards[i]) index["weight_map"][tensor_name] = name;
  }
  write_text("model.safetensors.index.json", index.dump(2));
}

}  // namespace lorafed::llama
