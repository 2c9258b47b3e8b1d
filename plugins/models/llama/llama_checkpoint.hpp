#pragma once
// Llama-family checkpoints as Hugging Face saves them: a folder with
// config.json and either model.safetensors or model.safetensors.index.json
// and the shards it names. Tensor names are LlamaForCausalLM's, so the PEFT
// export of an adapter trained here loads onto the transformers model.

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llama_config.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::llama {

struct TensorLayout {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<std::int64_t> shape;
};

// Every tensor of a LlamaForCausalLM of this configuration, in the model's
// order; "lm_head.weight" only when the head is not tied to the embedding.
// Linear weights are out × in (torch.nn.Linear).
std::vector<TensorLayout> checkpoint_layout(const LlamaConfig& config);

// The seven projections of layer `i` that may carry LoRA, by PEFT's module
// names: model.layers.<i>.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj.
std::vector<std::string> layer_projections(std::int64_t layer);

struct LlamaCheckpoint {
  LlamaConfig config;
  NamedTensors tensors;  // checkpoint_layout(config) names, in `dtype`
};

// Reads the folder. Files are memory-mapped; a tensor already stored in
// `dtype` (float32, float16 or bfloat16) stays a view of the mapping,
// others are converted. Throws FormatError naming the file and the tensor
// that is missing, extra, of the wrong shape or dtype, or not finite, and
// the shard an index names outside the folder.
LlamaCheckpoint read_llama_checkpoint(const std::filesystem::path& folder, c10::ScalarType dtype);

// Writes config.json and model.safetensors (or, with `shard_bytes` > 0,
// shards of about that size and model.safetensors.index.json) the way
// save_pretrained does, each file atomically. `tensors` must hold exactly
// checkpoint_layout(config).
void write_llama_checkpoint(const std::filesystem::path& folder, const LlamaConfig& config,
                            const NamedTensors& tensors, std::int64_t shard_bytes = 0);

}  // namespace lorafed::llama
