#include "base_model.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>

#include "byte_tokenizer.hpp"
#include "fingerprint.hpp"
#include "gpt_model.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/error.hpp"

namespace lorafed::gpt {
namespace {

constexpr double kHeldOut = 0.05;  // the corpus's tail, for the base's validation loss

std::string file_fingerprint(const std::filesystem::path& file) {
  Fnv1a fnv;
  fnv.add_file(file);
  return fnv.hex();
}

std::string pretrain_fingerprint(const BaseOptions& options,
                                 const std::vector<std::int64_t>& corpus) {
  const GptShape& s = options.shape;
  Fnv1a fnv;
  fnv.add(fmt::format("gpt-v1|{},{},{},{},{},{}|steps{}|batch{}|lr{}|seed{}", s.vocab_size,
                      s.context, s.n_embd, s.n_layer, s.n_head, s.layer_norm_epsilon,
                      options.pretrain_steps, options.pretrain_batch_size,
                      options.pretrain_learning_rate, options.pretrain_seed));
  fnv.add(corpus.data(), corpus.size() * sizeof(std::int64_t));
  return fnv.hex();
}

// GPT-2's initialisation: weights N(0, 0.02), residual projections scaled by
// 1/√(2·n_layer), biases zero, LayerNorm gains one.
NamedTensors initial_weights(const GptShape& shape, std::uint64_t seed) {
  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  NamedTensors weights;
  const double residual = 0.02 / std::sqrt(2.0 * static_cast<double>(shape.n_layer));
  for (const TensorLayout& entry : checkpoint_layout(shape)) {
    torch::Tensor tensor;
    if (entry.name.find(".ln_") != std::string::npos) {
      tensor =
          entry.name.ends_with(".weight") ? torch::ones(entry.shape) : torch::zeros(entry.shape);
    } else if (entry.name.ends_with(".bias")) {
      tensor = torch::zeros(entry.shape);
    } else {
      const double std = entry.name.ends_with("c_proj.weight") ? residual : 0.02;
      tensor = torch::empty(entry.shape).normal_(0.0, std, generator);
    }
    weights[entry.name] = tensor;
  }
  return weights;
}

std::shared_ptr<BaseModel> pretrain(const BaseOptions& options,
                                    const std::vector<std::int64_t>& corpus) {
  auto model = std::make_shared<BaseModel>();
  model->shape = options.shape;
  LoraGpt network(options.shape, initial_weights(options.shape, options.pretrain_seed), {});
  const auto split =
      static_cast<std::ptrdiff_t>(static_cast<double>(corpus.size()) * (1 - kHeldOut));
  const data::Examples train =
      corpus_windows({corpus.begin(), corpus.begin() + split}, options.shape.context);
  const data::Examples held_out =
      corpus_windows({corpus.begin() + split, corpus.end()}, options.shape.context);

  const TrainOptions training = pretraining_options(
      options.pretrain_learning_rate, options.pretrain_batch_size, options.pretrain_steps);
  const auto logits = [&](const torch::Tensor& tokens) {
    return network.forward(tokens).transpose(1, 2);  // batch × vocab × length
  };
  spdlog::info(
      "pretraining the gpt base ({} blocks × {} wide, context {}) on {} bytes of {} "
      "for {} steps",
      options.shape.n_layer, options.shape.n_embd, options.shape.context, corpus.size(),
      options.corpus_dir.string(), options.pretrain_steps);
  const TrainReport report =
      train_classifier(logits, network.local_parameters(), train, training, options.pretrain_seed);
  // evaluate_classifier's loss is per window; every position of a window is a target.
  const double held_loss = evaluate_classifier(logits, held_out, training.batch_size).loss /
                           static_cast<double>(options.shape.context);
  spdlog::info(
      "pretrained the gpt base: train loss {:.3f}, held-out loss {:.3f} ({:.2f} bits "
      "per byte)",
      report.mean_loss, held_loss, held_loss / std::log(2.0));
  model->weights = network.base_weights();
  return model;
}

}  // namespace

data::Examples corpus_windows(const std::vector<std::int64_t>& stream, std::int64_t context) {
  const torch::Tensor tokens = torch::tensor(stream, torch::kLong);
  const std::int64_t stride = std::max<std::int64_t>(1, context / 2);
  const auto total = static_cast<std::int64_t>(stream.size());
  if (total < context + 1) throw ConfigError("the pretraining corpus is shorter than one context");
  const torch::Tensor unfolded = tokens.unfold(0, context + 1, stride);  // windows × (context+1)
  return {unfolded.slice(1, 0, context).contiguous(), unfolded.slice(1, 1).contiguous()};
}

std::filesystem::path cache_dir_of(const std::filesystem::path& configured) {
  if (!configured.empty()) return configured;
  if (const char* dir = std::getenv("LORAFED_CACHE_DIR")) return dir;
  if (const char* home = std::getenv("HOME"))
    return std::filesystem::path(home) / ".cache" / "lorafed";
  return std::filesystem::temp_directory_path() / "lorafed-cache";
}

std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) {
    throw ConfigError(
        "corpus_dir '" + dir.string() +
        "' is not a directory (Debian's base-files ships /usr/share/common-licenses)");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && !entry.is_symlink()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw ConfigError("corpus_dir '" + dir.string() + "' has no files");
  return files;
}

std::vector<std::int64_t> read_corpus(const std::filesystem::path& dir) {
  std::vector<std::int64_t> corpus;
  for (const auto& file : corpus_files(dir)) {
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto tokens = encode_bytes(text);
    corpus.insert(corpus.end(), tokens.begin(), tokens.end());
    corpus.push_back(kEndOfText);
  }
  return corpus;
}

TrainOptions pretraining_options(double learning_rate, std::int64_t batch_size,
                                 std::int64_t steps) {
  TrainOptions training;
  training.optimizer = "adamw";
  training.learning_rate = learning_rate;
  training.weight_decay = 0.01;
  training.batch_size = batch_size;
  training.local_steps = steps;
  training.max_grad_norm = 1.0;
  return training;
}

std::shared_ptr<const BaseModel> load_or_pretrain_base(const BaseOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const BaseModel>> loaded;
  std::lock_guard lock(mutex);

  if (!options.checkpoint.empty()) {
    if (!std::filesystem::is_regular_file(options.checkpoint))
      throw ConfigError("gpt model: checkpoint '" + options.checkpoint.string() + "' not found");
    // Every client of a process asks for the same file: hash it once per
    // (path, size, modification time), not once per client.
    const std::string file_key =
        std::filesystem::absolute(options.checkpoint).string() + "|" +
        std::to_string(std::filesystem::file_size(options.checkpoint)) + "|" +
        std::to_string(
            std::filesystem::last_write_time(options.checkpoint).time_since_epoch().count());
    if (auto cached = loaded[file_key].lock()) return cached;
    const std::string fingerprint = file_fingerprint(options.checkpoint);
    Checkpoint checkpoint = read_checkpoint(options.checkpoint, options.shape);
    auto model = std::make_shared<BaseModel>(
        BaseModel{checkpoint.shape, std::move(checkpoint.tensors), fingerprint});
    spdlog::info("loaded the gpt base from {} ({} blocks × {} wide, {} heads, vocabulary {})",
                 options.checkpoint.string(), model->shape.n_layer, model->shape.n_embd,
                 model->shape.n_head, model->shape.vocab_size);
    loaded[file_key] = model;
    return model;
  }

  options.shape.validate();
  if (options.shape.vocab_size < kByteVocabulary) {
    throw ConfigError("gpt model: the byte tokenizer needs vocab_size ≥ " +
                      std::to_string(kByteVocabulary));
  }
  const std::vector<std::int64_t> corpus = read_corpus(options.corpus_dir);
  const std::string fingerprint = pretrain_fingerprint(options, corpus);
  if (auto cached = loaded[fingerprint].lock()) return cached;
  const std::filesystem::path file =
      cache_dir_of(options.cache_dir) / ("gpt-base-" + fingerprint + ".safetensors");
  std::shared_ptr<BaseModel> model;
  if (std::filesystem::exists(file)) {
    Checkpoint checkpoint = read_checkpoint(file, options.shape);
    model = std::make_shared<BaseModel>(
        BaseModel{checkpoint.shape, std::move(checkpoint.tensors), fingerprint});
  } else {
    model = pretrain(options, corpus);
    model->fingerprint = fingerprint;
    std::filesystem::create_directories(file.parent_path());
    write_checkpoint(file, model->shape, model->weights, {{"lorafed_fingerprint", fingerprint}});
    spdlog::info("cached the gpt base at {}", file.string());
  }
  loaded[fingerprint] = model;
  return model;
}

}  // namespace lorafed::gpt
