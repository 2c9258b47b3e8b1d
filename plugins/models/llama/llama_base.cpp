#include "llama_base.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <mutex>

#include <unistd.h>

#include "base_model.hpp"
#include "fingerprint.hpp"
#include "llama_checkpoint.hpp"
#include "llama_model.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/error.hpp"
#include "sentencepiece_training.hpp"

namespace lorafed::llama {
namespace {

namespace fs = std::filesystem;

constexpr double kHeldOut = 0.05;  // the corpus's tail, for the base's validation loss

// The files that make a model folder what it is, in a fixed order.
std::vector<fs::path> identity_files(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() &&
        (name == "config.json" || name.ends_with(".safetensors") ||
         name == "model.safetensors.index.json" || name.starts_with("tokenizer")))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string folder_fingerprint(const fs::path& folder) {
  gpt::Fnv1a fnv;
  for (const fs::path& file : identity_files(folder)) {
    fnv.add(file.filename().string());
    fnv.add_file(file);
  }
  return fnv.hex();
}

// Every identity file's path, size and modification time: a folder that
// changed on disk is read again.
std::string folder_key(const fs::path& folder) {
  std::string key = fs::absolute(folder).string();
  for (const fs::path& file : identity_files(folder)) {
    key += fmt::format("|{}:{}:{}", file.filename().string(), fs::file_size(file),
                       fs::last_write_time(file).time_since_epoch().count());
  }
  return key;
}

std::shared_ptr<LlamaBase> load_folder(const fs::path& folder, c10::ScalarType dtype,
                                       const std::string& fingerprint) {
  auto base = std::make_shared<LlamaBase>();
  LlamaCheckpoint checkpoint = read_llama_checkpoint(folder, dtype);
  base->config = std::move(checkpoint.config);
  base->weights = std::move(checkpoint.tensors);
  base->tokenizer = text::load_tokenizer(folder);
  if (base->tokenizer->vocab_size() > base->config.vocab_size) {
    throw ConfigError("llama model: the tokenizer in " + folder.string() + " has " +
                      std::to_string(base->tokenizer->vocab_size()) +
                      " tokens, more than the model's vocab_size (" +
                      std::to_string(base->config.vocab_size) + ")");
  }
  base->folder = folder;
  base->fingerprint = fingerprint;
  return base;
}

std::string pretrain_fingerprint(const LlamaBaseOptions& options) {
  const LlamaConfig& c = options.shape;
  gpt::Fnv1a fnv;
  fnv.add(fmt::format("llama-v1|{},{},{},{},{},{},{},{},{}|context{}|steps{}|batch{}|lr{}|seed{}",
                      c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
                      c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                      c.max_position_embeddings, c.rope_theta, options.pretrain_context,
                      options.pretrain_steps, options.pretrain_batch_size,
                      options.pretrain_learning_rate, options.pretrain_seed));
  for (const fs::path& file : gpt::corpus_files(options.corpus_dir)) {
    fnv.add(file.filename().string());
    fnv.add_file(file);
  }
  return fnv.hex();
}

// Llama's initialisation as transformers does it: every weight N(0, 0.02),
// RMSNorm gains one.
NamedTensors initial_weights(const LlamaConfig& config, std::uint64_t seed) {
  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(config)) {
    weights[entry.name] = entry.name.ends_with("norm.weight") ? torch::ones(entry.shape)
                          : entry.name.ends_with(".bias")
                              ? torch::zeros(entry.shape)
                              : torch::empty(entry.shape).normal_(0.0, 0.02, generator);
  }
  return weights;
}

// Trains the tokenizer and the model into `folder` (which must not exist).
void pretrain_into(const LlamaBaseOptions& options, const fs::path& folder) {
  // Processes that start together may pretrain the same base: each in its own folder.
  const fs::path partial = folder.string() + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial);
  fs::create_directories(partial);
  const std::vector<fs::path> files = gpt::corpus_files(options.corpus_dir);
  {
    std::ofstream corpus(partial / "corpus.txt", std::ios::binary);
    for (const fs::path& file : files)
      corpus << std::ifstream(file, std::ios::binary).rdbuf() << "\n";
    if (!corpus.flush())
      throw Error("llama model: cannot write " + (partial / "corpus.txt").string());
  }
  LlamaConfig config = options.shape;
  text::train_sentencepiece(partial / "corpus.txt", config.vocab_size, partial / "tokenizer.model");
  fs::remove(partial / "corpus.txt");
  const auto tokenizer = text::load_tokenizer(partial);
  config.bos_token_id = tokenizer->bos_id().value_or(-1);
  config.eos_token_ids = {tokenizer->eos_id().value()};

  std::vector<std::int64_t> stream;
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (config.bos_token_id >= 0) stream.push_back(config.bos_token_id);
    const auto tokens = tokenizer->encode(text);
    stream.insert(stream.end(), tokens.begin(), tokens.end());
    stream.push_back(config.eos_token_ids.front());
  }
  const auto split =
      static_cast<std::ptrdiff_t>(static_cast<double>(stream.size()) * (1 - kHeldOut));
  const data::Examples train =
      gpt::corpus_windows({stream.begin(), stream.begin() + split}, options.pretrain_context);
  const data::Examples held_out =
      gpt::corpus_windows({stream.begin() + split, stream.end()}, options.pretrain_context);

  LoraLlama network(config, initial_weights(config, options.pretrain_seed), {});
  const TrainOptions training = gpt::pretraining_options(
      options.pretrain_learning_rate, options.pretrain_batch_size, options.pretrain_steps);
  const auto logits = [&](const torch::Tensor& tokens) {
    return network.forward(tokens).transpose(1, 2);  // batch × vocab × length
  };
  spdlog::info(
      "pretraining the llama base ({} layers × {} wide, {} tokens of context) on {} tokens of {} "
      "for {} steps",
      config.num_hidden_layers, config.hidden_size, options.pretrain_context, stream.size(),
      options.corpus_dir.string(), options.pretrain_steps);
  const TrainReport report =
      train_classifier(logits, network.local_parameters(), train, training, options.pretrain_seed);
  const double held_loss = evaluate_classifier(logits, held_out, training.batch_size).loss /
                           static_cast<double>(options.pretrain_context);
  spdlog::info("pretrained the llama base: train loss {:.3f}, held-out loss {:.3f} per token",
               report.mean_loss, held_loss);
  write_llama_checkpoint(partial, config, network.base_weights());
  std::error_code error;
  fs::rename(partial, folder, error);
  if (error) {
    if (!fs::exists(folder / "config.json"))
      throw Error("llama model: cannot move the pretrained base to " + folder.string() + ": " +
                  error.message());
    fs::remove_all(partial);  // another process got there first; its base is the same
  }
}

}  // namespace

LlamaConfig default_base_config() {
  LlamaConfig config;
  config.vocab_size = 1024;
  config.hidden_size = 128;
  config.intermediate_size = 384;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 32;
  config.max_position_embeddings = 256;
  config.rms_norm_eps = 1e-5;
  config.tie_word_embeddings = true;
  return config;
}

std::shared_ptr<const LlamaBase> load_or_pretrain_llama(const LlamaBaseOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const LlamaBase>> loaded;
  std::lock_guard lock(mutex);
  const std::string dtype_key = std::string("|") + c10::toString(options.dtype);

  if (!options.checkpoint.empty()) {
    if (!fs::is_directory(options.checkpoint)) {
      throw ConfigError("llama model: checkpoint '" + options.checkpoint.string() +
                        "' is not a folder (a Hugging Face model folder: config.json, "
                        "model.safetensors and tokenizer.json or tokenizer.model)");
    }
    const std::string key = folder_key(options.checkpoint) + dtype_key;
    if (auto cached = loaded[key].lock()) return cached;
    auto base =
        load_folder(options.checkpoint, options.dtype, folder_fingerprint(options.checkpoint));
    spdlog::info(
        "loaded the llama base from {} ({} layers × {} wide, {} heads on {}, vocabulary {})",
        options.checkpoint.string(), base->config.num_hidden_layers, base->config.hidden_size,
        base->config.num_attention_heads, base->config.num_key_value_heads,
        base->config.vocab_size);
    loaded[key] = base;
    return base;
  }

  options.shape.validate();
  if (options.pretrain_context < 2 ||
      options.pretrain_context > options.shape.max_position_embeddings)
    throw ConfigError("llama model: pretrain_context must lie in 2..max_position_embeddings");
  const std::string fingerprint = pretrain_fingerprint(options);
  if (auto cached = loaded[fingerprint + dtype_key].lock()) return cached;
  const fs::path folder = gpt::cache_dir_of(options.cache_dir) / ("llama-base-" + fingerprint);
  if (!fs::exists(folder / "config.json")) {
    fs::create_directories(folder.parent_path());
    pretrain_into(options, folder);
    spdlog::info("cached the llama base at {}", folder.string());
  }
  auto base = load_folder(folder, options.dtype, fingerprint);
  loaded[fingerprint + dtype_key] = base;
  return base;
}

}  // namespace lorafed::llama
