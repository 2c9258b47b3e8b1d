#include "gpt_layout.hpp"

#include <ATen/ATen.h>

#include <spdlog/fmt/fmt.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"

namespace lorafed::gpt {
namespace {

const std::string kPrefix = "transformer.";

std::string shape_text(at::IntArrayRef shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

// n_layer: one more than the largest block index among the tensor names.
std::int64_t count_blocks(const NamedTensors& tensors) {
  std::int64_t blocks = 0;
  const std::string head = kPrefix + "h.";
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind(head, 0) != 0) continue;
    const std::size_t end = name.find('.', head.size());
    try {
      blocks = std::max<std::int64_t>(blocks, std::stoll(name.substr(head.size(), end)) + 1);
    } catch (const std::exception&) {
      // not a block index: reported as an unexpected tensor below
    }
  }
  return blocks;
}

void read_head_settings(const std::filesystem::path& file,
                        const std::map<std::string, std::string>& metadata, GptShape& shape) {
  const std::filesystem::path config = file.parent_path() / "config.json";
  if (std::filesystem::exists(config)) {
    std::ifstream in(config);
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(in);
      shape.n_head = json.value("n_head", shape.n_head);
      shape.layer_norm_epsilon = json.value("layer_norm_epsilon", shape.layer_norm_epsilon);
    } catch (const nlohmann::json::exception& error) {
      throw FormatError("gpt model: cannot read " + config.string() + ": " + error.what());
    }
    return;
  }
  try {
    if (metadata.contains("n_head")) shape.n_head = std::stoll(metadata.at("n_head"));
    if (metadata.contains("layer_norm_epsilon"))
      shape.layer_norm_epsilon = std::stod(metadata.at("layer_norm_epsilon"));
  } catch (const std::exception&) {
    throw FormatError("gpt model: " + file.string() +
                      " has unreadable n_head or "
                      "layer_norm_epsilon metadata");
  }
}

}  // namespace

void GptShape::validate() const {
  if (vocab_size < 1 || context < 1 || n_embd < 1 || n_layer < 1 || n_head < 1) {
    throw ConfigError(
        "gpt model: vocab_size, context, n_embd, n_layer and n_head must be positive");
  }
  if (n_embd % n_head != 0) {
    throw ConfigError("gpt model: n_head (" + std::to_string(n_head) + ") must divide n_embd (" +
                      std::to_string(n_embd) + ")");
  }
  if (!(layer_norm_epsilon > 0))
    throw ConfigError("gpt model: layer_norm_epsilon must be positive");
}

std::vector<std::string> block_projections(std::int64_t block) {
  const std::string h = kPrefix + "h." + std::to_string(block) + ".";
  return {h + "attn.c_attn", h + "attn.c_proj", h + "mlp.c_fc", h + "mlp.c_proj"};
}

std::vector<TensorLayout> checkpoint_layout(const GptShape& shape) {
  const std::int64_t e = shape.n_embd;
  std::vector<TensorLayout> layout = {{kPrefix + "wte.weight", {shape.vocab_size, e}},
                                      {kPrefix + "wpe.weight", {shape.context, e}}};
  for (std::int64_t i = 0; i < shape.n_layer; ++i) {
    const std::string h = kPrefix + "h." + std::to_string(i) + ".";
    layout.push_back({h + "ln_1.weight", {e}});
    layout.push_back({h + "ln_1.bias", {e}});
    layout.push_back({h + "attn.c_attn.weight", {e, 3 * e}});
    layout.push_back({h + "attn.c_attn.bias", {3 * e}});
    layout.push_back({h + "attn.c_proj.weight", {e, e}});
    layout.push_back({h + "attn.c_proj.bias", {e}});
    layout.push_back({h + "ln_2.weight", {e}});
    layout.push_back({h + "ln_2.bias", {e}});
    layout.push_back({h + "mlp.c_fc.weight", {e, 4 * e}});
    layout.push_back({h + "mlp.c_fc.bias", {4 * e}});
    layout.push_back({h + "mlp.c_proj.weight", {4 * e, e}});
    layout.push_back({h + "mlp.c_proj.bias", {e}});
  }
  layout.push_back({kPrefix + "ln_f.weight", {e}});
  layout.push_back({kPrefix + "ln_f.bias", {e}});
  return layout;
}

Checkpoint read_checkpoint(const std::filesystem::path& file, const GptShape& fallback) {
  const SafetensorsFile loaded = load_safetensors(file);
  const std::string where = "gpt model: checkpoint " + file.string();
  NamedTensors tensors;
  at::Tensor lm_head;
  for (const auto& [raw_name, tensor] : loaded.tensors) {
    if (raw_name == "lm_head.weight") {
      lm_head = tensor;
      continue;
    }
    const std::string name = raw_name.rfind(kPrefix, 0) == 0 ? raw_name : kPrefix + raw_name;
    // GPT-2's causal-mask buffers, saved by older transformers versions.
    if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")) continue;
    if (!tensors.emplace(name, tensor).second) {
      throw FormatError(where + " holds '" + name + "' both with and without the prefix");
    }
  }
  const auto find = [&](const std::string& name) {
    const auto found = tensors.find(kPrefix + name);
    if (found == tensors.end()) throw FormatError(where + " has no '" + name + "'");
    return found->second;
  };
  Checkpoint checkpoint;
  GptShape& shape = checkpoint.shape;
  shape = fallback;
  const at::Tensor wte = find("wte.weight");
  const at::Tensor wpe = find("wpe.weight");
  if (wte.dim() != 2 || wpe.dim() != 2 || wte.size(1) != wpe.size(1)) {
    throw FormatError(where + ": wte " + shape_text(wte.sizes()) + " and wpe " +
                      shape_text(wpe.sizes()) + " are not vocab × n_embd and context × n_embd");
  }
  shape.vocab_size = wte.size(0);
  shape.n_embd = wte.size(1);
  shape.context = wpe.size(0);
  shape.n_layer = count_blocks(tensors);
  if (shape.n_layer == 0) throw FormatError(where + " has no transformer blocks (h.0...)");
  read_head_settings(file, loaded.metadata, shape);
  shape.validate();
  if (lm_head.defined() && !(lm_head.sizes() == wte.sizes() && at::equal(lm_head, wte))) {
    throw FormatError(where +
                      ": lm_head.weight differs from wte.weight (an untied head is not "
                      "the GPT-2 layout)");
  }

  std::set<std::string> expected;
  for (const TensorLayout& entry : checkpoint_layout(shape)) {
    expected.insert(entry.name);
    const auto found = tensors.find(entry.name);
    if (found == tensors.end()) throw FormatError(where + " has no '" + entry.name + "'");
    if (found->second.sizes() != at::IntArrayRef(entry.shape)) {
      throw FormatError(where + ": '" + entry.name + "' is " + shape_text(found->second.sizes()) +
                        ", expected " + shape_text(entry.shape));
    }
    if (!at::isFloatingType(found->second.scalar_type())) {
      throw FormatError(where + ": '" + entry.name + "' is not a floating-point tensor");
    }
    checkpoint.tensors[entry.name] = found->second.to(at::kFloat).contiguous();
    if (!checkpoint.tensors[entry.name].isfinite().all().item<bool>()) {
      throw FormatError(where + ": '" + entry.name + "' holds NaN or Inf");
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (!expected.contains(name)) {
      throw FormatError(where + " holds '" + name + "', which is not part of a GPT-2 model with " +
                        std::to_string(shape.n_layer) + " blocks");
    }
  }
  return checkpoint;
}

void write_checkpoint(const std::filesystem::path& file, const GptShape& shape,
                      const NamedTensors& tensors, std::map<std::string, std::string> metadata) {
  for (const TensorLayout& entry : checkpoint_layout(shape)) {
    const auto found = tensors.find(entry.name);
    if (found == tensors.end() || found->second.sizes() != at::IntArrayRef(entry.shape)) {
      throw Error("gpt model: cannot write '" + entry.name + "': missing or of the wrong shape");
    }
  }
  metadata["format"] = "pt";
  metadata["n_head"] = std::to_string(shape.n_head);
  metadata["layer_norm_epsilon"] = fmt::format("{}", shape.layer_norm_epsilon);
  save_safetensors(file, tensors, metadata);
}

nlohmann::json hf_config(const GptShape& shape, std::int64_t end_of_text) {
  return {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", shape.vocab_size},
      {"n_positions", shape.context},
      {"n_ctx", shape.context},
      {"n_embd", shape.n_embd},
      {"n_layer", shape.n_layer},
      {"n_head", shape.n_head},
      {"n_inner", nullptr},  // 4 · n_embd
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", shape.layer_norm_epsilon},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"initializer_range", 0.02},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      {"use_cache", true},
      {"bos_token_id", end_of_text},
      {"eos_token_id", end_of_text},
      {"torch_dtype", "float32"},
  };
}

void write_hf_model(const std::filesystem::path& directory, const GptShape& shape,
                    const NamedTensors& tensors, std::int64_t end_of_text) {
  std::filesystem::create_directories(directory);
  write_checkpoint(directory / "model.safetensors", shape, tensors);
  const std::filesystem::path config = directory / "config.json";
  const std::filesystem::path partial = directory / "config.json.partial";
  {
    std::ofstream out(partial, std::ios::trunc);
    out << hf_config(shape, end_of_text).dump(2) << "\n";
    if (!out.flush()) throw Error("gpt model: cannot write " + partial.string());
  }
  std::filesystem::rename(partial, config);
}

}  // namespace lorafed::gpt
