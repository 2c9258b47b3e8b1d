// The `gpt` model backend: a GPT-2-layout transformer with LoRA on its
// projections, instruction-tuned on arithmetic word problems or an
// instruction dataset (README.md).
#include <torch/torch.h>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "answer_evaluation.hpp"
#include "base_model.hpp"
#include "byte_tokenizer.hpp"
#include "fingerprint.hpp"
#include "gpt_model.hpp"
#include "instruction_data.hpp"
#include "language_model_backend.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "peft_targets.hpp"
#include "tokenizer.hpp"

namespace {

using namespace lorafed;
using namespace lorafed::gpt;

// The files a Hugging Face model folder keeps its tokenizer in.
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json",          "tokenizer.model", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json",      "merges.txt"};

// The text a model reads: the byte tokenizer, or the tokenizer saved beside
// a checkpoint (README.md, "Tokenizers").
struct Text {
  SequenceEncoder encoder = byte_encoder();
  std::filesystem::path folder;  // empty: bytes
  std::string fingerprint;       // of the tokenizer's files; empty: bytes
};

class GptBackend final : public LanguageModelBackend<LoraGpt> {
 public:
  GptBackend(std::shared_ptr<const BaseModel> base, std::vector<std::string> targets, RoleData data,
             TaskOptions task, const ModelContext& context, Text text, std::int64_t eval_batch_size)
      : LanguageModelBackend("gpt", LoraGpt(base->shape, base->weights, std::move(targets)),
                             std::move(data), std::move(task), context, eval_batch_size),
        base_(std::move(base)),
        text_(std::move(text)),
        model_id_(fmt::format("gpt-{}x{}h{}-{}", base_->shape.n_layer, base_->shape.n_embd,
                              base_->shape.n_head, model_fingerprint().substr(0, 8))) {}

  ModelSpec spec() const override { return network_.spec(model_id_); }

  // GPT2LMHeadModel: a causal language model whose projections are Conv1D
  // (weights in × out), so PEFT's fan_in_fan_out. base_ is the base as loaded
  // or pretrained: merge_adapter and kLocal training change this instance's
  // own copy (network_), never it. A checkpoint's tokenizer goes with it,
  // so the folder also loads as a tokenizer.
  std::optional<HfBaseModel> write_hf_base(const std::filesystem::path& directory) const override {
    write_hf_model(directory, base_->shape, base_->weights, text_.encoder.end);
    if (!text_.folder.empty()) {
      for (const char* name : kTokenizerFiles) {
        if (std::filesystem::exists(text_.folder / name))
          std::filesystem::copy_file(text_.folder / name, directory / name,
                                     std::filesystem::copy_options::overwrite_existing);
      }
    }
    return HfBaseModel{"CAUSAL_LM", true};
  }

 private:
  std::vector<std::string> generate_answers(const std::vector<WordProblem>& problems,
                                            std::int64_t max_new_tokens,
                                            bool first_line) const override {
    return greedy_answers(network_, problems, text_.encoder, max_new_tokens, eval_batch_size_,
                          first_line);
  }

  // The weights' fingerprint, and the tokenizer's where there is one: a
  // client tokenising otherwise speaks another model.
  std::string model_fingerprint() const {
    if (text_.fingerprint.empty()) return base_->fingerprint;
    Fnv1a hash;
    hash.add(base_->fingerprint);
    hash.add(text_.fingerprint);
    return hash.hex();
  }

  std::shared_ptr<const BaseModel> base_;  // shared by every instance in the process
  Text text_;
  std::string model_id_;
};

// Every block projection, in the model's order, as PEFT's targets match them.
std::vector<std::string> resolve_targets(const ConfigTable& config, const GptShape& shape,
                                         const std::vector<std::string>& wanted) {
  std::vector<std::string> modules;
  for (std::int64_t i = 0; i < shape.n_layer; ++i) {
    for (const std::string& name : block_projections(i)) modules.push_back(name);
  }
  return match_targets(config, modules, wanted,
                       "modules: c_attn, attn.c_proj, c_fc, mlp.c_proj, c_proj, or a full name "
                       "such as transformer.h.0.attn.c_attn");
}

// The checkpoint folder's tokenizer where it has one (tokenizer.json or
// tokenizer.model), else bytes. Sequences carry no prefix (GPT-2 adds no BOS)
// and end with the tokenizer's EOS, or <|endoftext|>.
Text read_text(const std::filesystem::path& checkpoint, std::int64_t vocab_size) {
  Text text;
  const std::filesystem::path folder =
      checkpoint.parent_path().empty() ? std::filesystem::path(".") : checkpoint.parent_path();
  if (checkpoint.empty() || (!std::filesystem::exists(folder / "tokenizer.json") &&
                             !std::filesystem::exists(folder / "tokenizer.model"))) {
    if (vocab_size < kByteVocabulary) {
      throw ConfigError(
          "gpt model: the byte tokenizer needs a vocabulary of at least 257 tokens (a "
          "checkpoint with another vocabulary needs its tokenizer.json beside it)");
    }
    return text;
  }
  std::shared_ptr<const text::Tokenizer> tokenizer = text::load_tokenizer(folder);
  if (tokenizer->vocab_size() > vocab_size) {
    throw ConfigError(fmt::format(
        "gpt model: the tokenizer in {} has {} tokens, more than the checkpoint's {} embeddings",
        folder.string(), tokenizer->vocab_size(), vocab_size));
  }
  std::optional<std::int64_t> end = tokenizer->eos_id();
  if (!end) end = tokenizer->token_id("<|endoftext|>");
  if (!end) {
    throw ConfigError("gpt model: the tokenizer in " + folder.string() +
                      " names no end token (tokenizer_config.json's eos_token, or "
                      "<|endoftext|>)");
  }
  text.encoder.encode = [tokenizer](const std::string& value) { return tokenizer->encode(value); };
  text.encoder.decode = [tokenizer](const std::vector<std::int64_t>& ids) {
    return tokenizer->decode(ids);
  };
  text.encoder.end = *end;
  text.encoder.prefix.clear();
  text.folder = folder;
  Fnv1a hash;
  for (const char* name : kTokenizerFiles) {
    if (!std::filesystem::exists(folder / name)) continue;
    hash.add(std::string(name));
    hash.add_file(folder / name);
  }
  text.fingerprint = hash.hex();
  spdlog::info("gpt model: tokenizer from {} ({} tokens, end token {})", folder.string(),
               tokenizer->vocab_size(), *end);
  return text;
}

class GptFactory final : public ModelFactory {
 public:
  std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                       const ModelContext& context) const override {
    BaseOptions base;
    base.checkpoint = config.get<std::string>("checkpoint", "");
    GptShape& shape = base.shape;
    shape.vocab_size = config.get<std::int64_t>("vocab_size", shape.vocab_size);
    shape.context = config.get<std::int64_t>("context", shape.context);
    shape.n_embd = config.get<std::int64_t>("n_embd", shape.n_embd);
    shape.n_layer = config.get<std::int64_t>("n_layer", shape.n_layer);
    shape.n_head = config.get<std::int64_t>("n_head", shape.n_head);
    read_pretraining_keys(config, base);

    TaskOptions tasks = read_task_options(config, "gpt");
    const std::int64_t eval_batch_size = config.get<std::int64_t>("eval_batch_size", 200);
    if (eval_batch_size < 1) throw_config_error(config, "eval_batch_size", "must be positive");
    const auto wanted =
        config.get<std::vector<std::string>>("targets", {"c_attn", "c_proj", "c_fc"});

    auto base_model = load_or_pretrain_base(base);
    Text text = read_text(base.checkpoint, base_model->shape.vocab_size);
    tasks.context = base_model->shape.context;
    auto targets = resolve_targets(config, base_model->shape, wanted);
    RoleData data = load_role_data(tasks, context, text.encoder);
    return std::make_unique<GptBackend>(std::move(base_model), std::move(targets), std::move(data),
                                        std::move(tasks), context, std::move(text),
                                        eval_batch_size);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("gpt", "0.1.0", GptFactory)
