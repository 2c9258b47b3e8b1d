#pragma once
// Where the `llama` backend's base comes from: a Hugging Face model folder
// the user brings (config.json, safetensors, tokenizer.json or
// tokenizer.model), or a small Llama-layout model pretrained here, with a
// SentencePiece tokenizer trained on the same Debian-shipped corpus, and
// cached as such a folder, so both go through the same loaders.

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "llama_config.hpp"
#include "lorafed/named_tensors.hpp"
#include "tokenizer.hpp"

namespace lorafed::llama {

// The default base: 4 layers of width 128, 4 query heads on 2 key/value
// heads, SwiGLU of 384, a tied head, a 1,024-token vocabulary.
LlamaConfig default_base_config();

struct LlamaBaseOptions {
  std::filesystem::path checkpoint;                // a model folder; empty: the pretrained default
  c10::ScalarType dtype = c10::ScalarType::Float;  // the frozen base's dtype in memory
  LlamaConfig shape = default_base_config();       // for pretraining
  std::filesystem::path corpus_dir = "/usr/share/common-licenses";
  std::int64_t pretrain_context = 128;
  std::int64_t pretrain_steps = 600;
  std::int64_t pretrain_batch_size = 16;
  double pretrain_learning_rate = 3e-3;
  std::uint64_t pretrain_seed = 0;
  std::filesystem::path cache_dir;  // empty: $LORAFED_CACHE_DIR, else ~/.cache/lorafed
};

struct LlamaBase {
  LlamaConfig config;
  NamedTensors weights;  // checkpoint_layout(config) names, in the chosen dtype
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::filesystem::path folder;  // where it was loaded from
  std::string fingerprint;       // identifies config, weights and tokenizer
};

// Loads the folder, or the cached default for these options, pretraining
// and caching it first if needed. Shared within a process.
std::shared_ptr<const LlamaBase> load_or_pretrain_llama(const LlamaBaseOptions& options);

}  // namespace lorafed::llama
