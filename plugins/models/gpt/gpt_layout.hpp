#pragma once
// The GPT-2 checkpoint layout as Hugging Face `transformers` names it, so a
// user's GPT-2-family safetensors file loads as a base and the base this
// backend pretrains loads in GPT2LMHeadModel.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lorafed/named_tensors.hpp"

namespace lorafed::gpt {

struct GptShape {
  std::int64_t vocab_size = 257;  // 256 bytes + <|endoftext|>
  std::int64_t context = 128;     // n_positions
  std::int64_t n_embd = 64;
  std::int64_t n_layer = 4;
  std::int64_t n_head = 4;
  double layer_norm_epsilon = 1e-5;

  // Throws ConfigError when a size is not positive or n_head does not divide n_embd.
  void validate() const;
};

struct TensorLayout {
  std::string name;  // e.g. "transformer.h.0.attn.c_attn.weight"
  std::vector<std::int64_t> shape;
};

// Every tensor of a GPT2LMHeadModel checkpoint of this shape, in order, with
// the "transformer." prefix and without "lm_head.weight" (tied to wte), as
// save_pretrained writes them. Conv1D weights are in × out.
std::vector<TensorLayout> checkpoint_layout(const GptShape& shape);

// The four projections of block `i` that may carry LoRA, as PEFT names the
// modules of GPT2LMHeadModel: transformer.h.<i>.attn.c_attn, .attn.c_proj,
// .mlp.c_fc, .mlp.c_proj.
std::vector<std::string> block_projections(std::int64_t block);

// Reads a GPT-2 checkpoint: names with or without the "transformer." prefix
// (GPT2LMHeadModel or GPT2Model); "lm_head.weight" must equal wte when
// present (untied heads are refused); attention-mask buffers (attn.bias,
// attn.masked_bias) are skipped. vocab, context, n_embd and n_layer come from
// the tensors; n_head and layer_norm_epsilon from config.json beside the file
// when there is one, else from the file's metadata (write_checkpoint() puts
// them there), else from `fallback`. Returns float32 tensors named as
// checkpoint_layout() names them. Throws FormatError naming the file and the
// tensor that is missing, extra or of the wrong shape.
struct Checkpoint {
  GptShape shape;
  NamedTensors tensors;
};
Checkpoint read_checkpoint(const std::filesystem::path& file, const GptShape& fallback);

// Writes `tensors` (checkpoint_layout() names, checked) as save_pretrained
// would, with n_head and layer_norm_epsilon in the file's metadata (read back
// when no config.json is beside it), plus `metadata`.
void write_checkpoint(const std::filesystem::path& file, const GptShape& shape,
                      const NamedTensors& tensors,
                      std::map<std::string, std::string> metadata = {});

// The config.json of a GPT2LMHeadModel of this shape as transformers'
// GPT2Config reads it: architectures ["GPT2LMHeadModel"], model_type
// "gpt2", the sizes, GELU (tanh) as "gelu_new", a tied head, no dropout
// (this backend trains without), and <|endoftext|> as bos and eos.
nlohmann::json hf_config(const GptShape& shape, std::int64_t end_of_text);

// A folder from_pretrained loads as GPT2LMHeadModel: config.json
// (hf_config) and model.safetensors (write_checkpoint). Each file is written
// atomically; the folder is created if needed.
void write_hf_model(const std::filesystem::path& directory, const GptShape& shape,
                    const NamedTensors& tensors, std::int64_t end_of_text);

}  // namespace lorafed::gpt
