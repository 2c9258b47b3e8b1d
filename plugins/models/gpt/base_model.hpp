#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "gpt_layout.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::gpt {

// Where the `gpt` backend's base comes from: a user's GPT-2-family
// checkpoint, or a small model pretrained here on a text corpus that a Debian
// package ships (README.md says which and why) and cached as safetensors.
struct BaseOptions {
  GptShape shape;                    // for pretraining; a checkpoint brings its own
  std::filesystem::path checkpoint;  // empty: pretrain
  std::filesystem::path corpus_dir = "/usr/share/common-licenses";
  std::int64_t pretrain_steps = 1000;
  std::int64_t pretrain_batch_size = 32;
  double pretrain_learning_rate = 3e-3;
  std::uint64_t pretrain_seed = 0;
  std::filesystem::path cache_dir;  // empty: $LORAFED_CACHE_DIR, else ~/.cache/lorafed
};

struct BaseModel {
  GptShape shape;
  NamedTensors weights;     // checkpoint_layout(shape) names
  std::string fingerprint;  // identifies the weights (options and corpus, or the file)
};

// The corpus for pretraining: every regular file in `dir`, symbolic links
// skipped, sorted by name. Throws ConfigError when there is none.
std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir);
// corpus_files(dir) as bytes, each followed by <|endoftext|>.
std::vector<std::int64_t> read_corpus(const std::filesystem::path& dir);

// Windows of context + 1 tokens of `stream` at half-context strides, as
// inputs (the first context) and labels (the next token of each). Throws
// ConfigError when the stream is shorter than one window.
data::Examples corpus_windows(const std::vector<std::int64_t>& stream, std::int64_t context);

// Where pretrained bases are cached: `configured`, else $LORAFED_CACHE_DIR,
// else ~/.cache/lorafed.
std::filesystem::path cache_dir_of(const std::filesystem::path& configured);

// Loads the checkpoint, or the cached pretrained base for these options,
// pretraining and caching it first if needed. Shared within a process.
std::shared_ptr<const BaseModel> load_or_pretrain_base(const BaseOptions& options);

}  // namespace lorafed::gpt
