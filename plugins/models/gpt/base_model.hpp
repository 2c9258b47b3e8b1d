#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "gpt_layout.hpp"
#include "lorafed/config.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"
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

// The pretraining keys of [model] that gpt and llama share (corpus_dir,
// pretrain_steps, pretrain_batch_size, pretrain_learning_rate, pretrain_seed,
// cache_dir), read over the defaults in `options` (BaseOptions or
// llama::LlamaBaseOptions, whose fields have these names). Throws
// ConfigError, naming the key, for a size or rate that is not positive.
template <class Options>
void read_pretraining_keys(const ConfigTable& config, Options& options) {
  options.corpus_dir = config.get<std::string>("corpus_dir", options.corpus_dir.string());
  options.pretrain_steps = config.get<std::int64_t>("pretrain_steps", options.pretrain_steps);
  if (options.pretrain_steps < 1) throw_config_error(config, "pretrain_steps", "must be positive");
  options.pretrain_batch_size =
      config.get<std::int64_t>("pretrain_batch_size", options.pretrain_batch_size);
  if (options.pretrain_batch_size < 1)
    throw_config_error(config, "pretrain_batch_size", "must be positive");
  options.pretrain_learning_rate =
      config.get<double>("pretrain_learning_rate", options.pretrain_learning_rate);
  if (!(options.pretrain_learning_rate > 0))
    throw_config_error(config, "pretrain_learning_rate", "must be positive");
  options.pretrain_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("pretrain_seed", 0));
  options.cache_dir = config.get<std::string>("cache_dir", "");
}

// How a base is pretrained: AdamW at `learning_rate`, weight decay 0.01,
// gradients clipped at norm 1, `steps` steps of `batch_size` windows.
TrainOptions pretraining_options(double learning_rate, std::int64_t batch_size, std::int64_t steps);

// Where pretrained bases are cached: `configured`, else $LORAFED_CACHE_DIR,
// else ~/.cache/lorafed.
std::filesystem::path cache_dir_of(const std::filesystem::path& configured);

// Loads the checkpoint, or the cached pretrained base for these options,
// pretraining and caching it first if needed. Shared within a process.
std::shared_ptr<const BaseModel> load_or_pretrain_base(const BaseOptions& options);

}  // namespace lorafed::gpt
