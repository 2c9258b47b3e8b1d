// The `llama` model backend: a Llama-family causal language model (Llama,
// Mistral, Qwen2 layouts) with LoRA on its projections, from a Hugging Face
// model folder or a small base pretrained here, instruction-tuned on
// arithmetic word problems or an instruction dataset
// (plugins/models/llama/README.md).
#include <torch/torch.h>

#include <spdlog/fmt/fmt.h>

#include <fstream>

#include "base_model.hpp"
#include "generation.hpp"
#include "instruction_data.hpp"
#include "language_model_backend.hpp"
#include "llama_base.hpp"
#include "llama_checkpoint.hpp"
#include "llama_model.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "peft_targets.hpp"

namespace {

using namespace lorafed;
using namespace lorafed::llama;
namespace fs = std::filesystem;

class LlamaBackend final : public gpt::LanguageModelBackend<LoraLlama> {
 public:
  LlamaBackend(std::shared_ptr<const LlamaBase> base, std::vector<std::string> targets,
               gpt::SequenceEncoder encoder, gpt::RoleData data, gpt::TaskOptions task,
               const ModelContext& context, std::int64_t eval_batch_size)
      : LanguageModelBackend("llama", LoraLlama(base->config, base->weights, std::move(targets)),
                             std::move(data), std::move(task), context, eval_batch_size),
        base_(std::move(base)),
        encoder_(std::move(encoder)),
        model_id_(fmt::format("llama-{}x{}-{}", base_->config.num_hidden_layers,
                              base_->config.hidden_size, base_->fingerprint.substr(0, 8))) {}

  ModelSpec spec() const override { return network_.spec(model_id_); }

  // LlamaForCausalLM (or its Mistral/Qwen2 relative): nn.Linear targets, so
  // not fan_in_fan_out. The base as loaded, in its dtype, with the
  // tokenizer's files, so the folder also loads as a tokenizer.
  std::optional<HfBaseModel> write_hf_base(const fs::path& directory) const override {
    write_llama_checkpoint(directory, base_->config, base_->weights);
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                             "special_tokens_map.json", "generation_config.json"}) {
      if (fs::exists(base_->folder / name))
        fs::copy_file(base_->folder / name, directory / name, fs::copy_options::overwrite_existing);
    }
    return HfBaseModel{"CAUSAL_LM", false};
  }

 private:
  // Greedy, with the KV cache, until one of the model's end tokens; at most
  // what the model's positions leave after the longest prompt.
  std::vector<std::string> generate_answers(const std::vector<gpt::WordProblem>& problems,
                                            std::int64_t max_new_tokens,
                                            bool first_line) const override {
    std::vector<std::vector<std::int64_t>> prompts;
    std::int64_t longest = 0;
    for (const gpt::WordProblem& problem : problems) {
      std::vector<std::int64_t> prompt = encoder_.prefix;
      const auto tokens = encoder_.encode(problem.prompt);
      prompt.insert(prompt.end(), tokens.begin(), tokens.end());
      longest = std::max(longest, static_cast<std::int64_t>(prompt.size()));
      prompts.push_back(std::move(prompt));
    }
    GenerationOptions generation;
    generation.max_new_tokens =
        std::min(max_new_tokens, base_->config.max_position_embeddings - longest);
    if (generation.max_new_tokens < 1) return std::vector<std::string>(problems.size());
    generation.stop_tokens = base_->config.eos_token_ids;
    generation.stop_tokens.push_back(encoder_.end);
    generation.batch_size = eval_batch_size_;
    std::vector<std::string> answers;
    for (const auto& tokens : generate(network_, prompts, generation)) {
      std::string answer = base_->tokenizer->decode(tokens);
      answers.push_back(first_line ? answer.substr(0, answer.find('\n')) : answer);
    }
    return answers;
  }

  std::shared_ptr<const LlamaBase> base_;  // shared by every instance in the process
  gpt::SequenceEncoder encoder_;
  std::string model_id_;
};

c10::ScalarType parse_dtype(const ConfigTable& config) {
  const std::string name = config.get<std::string>("dtype", "float32");
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw_config_error(config, "dtype",
                     "must be \"float32\", \"bfloat16\" or \"float16\", got \"" + name + "\"");
}

// BOS before the prompt where the model has one; the model's first end
// token after the answer.
gpt::SequenceEncoder sequence_encoder(const LlamaBase& base) {
  gpt::SequenceEncoder encoder;
  const auto tokenizer = base.tokenizer;
  encoder.encode = [tokenizer](const std::string& text) { return tokenizer->encode(text); };
  if (base.config.bos_token_id >= 0) {
    encoder.prefix = {base.config.bos_token_id};
  } else if (const auto bos = tokenizer->bos_id()) {
    encoder.prefix = {*bos};
  }
  if (!base.config.eos_token_ids.empty()) {
    encoder.end = base.config.eos_token_ids.front();
  } else if (const auto eos = tokenizer->eos_id()) {
    encoder.end = *eos;
  } else {
    throw ConfigError("llama model: " + base.folder.string() +
                      " names no end-of-sequence token (config.json eos_token_id, or the "
                      "tokenizer's eos_token)");
  }
  return encoder;
}

class LlamaFactory final : public ModelFactory {
 public:
  std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                       const ModelContext& context) const override {
    LlamaBaseOptions base;
    base.checkpoint = config.get<std::string>("checkpoint", "");
    base.dtype = parse_dtype(config);
    LlamaConfig& shape = base.shape;
    shape.vocab_size = config.get<std::int64_t>("vocab_size", shape.vocab_size);
    shape.hidden_size = config.get<std::int64_t>("hidden_size", shape.hidden_size);
    shape.intermediate_size =
        config.get<std::int64_t>("intermediate_size", shape.intermediate_size);
    shape.num_hidden_layers =
        config.get<std::int64_t>("num_hidden_layers", shape.num_hidden_layers);
    shape.num_attention_heads =
        config.get<std::int64_t>("num_attention_heads", shape.num_attention_heads);
    shape.num_key_value_heads =
        config.get<std::int64_t>("num_key_value_heads", shape.num_key_value_heads);
    shape.head_dim =
        shape.num_attention_heads > 0 ? shape.hidden_size / shape.num_attention_heads : 0;
    shape.max_position_embeddings =
        config.get<std::int64_t>("max_position_embeddings", shape.max_position_embeddings);
    if (shape.num_attention_heads < 1 || shape.hidden_size % shape.num_attention_heads != 0)
      throw_config_error(config, "num_attention_heads", "must divide hidden_size");
    gpt::read_pretraining_keys(config, base);
    base.pretrain_context = config.get<std::int64_t>("pretrain_context", base.pretrain_context);

    gpt::TaskOptions tasks = gpt::read_task_options(config, "llama");
    const std::int64_t eval_batch_size = config.get<std::int64_t>("eval_batch_size", 64);
    if (eval_batch_size < 1) throw_config_error(config, "eval_batch_size", "must be positive");
    const auto wanted = config.get<std::vector<std::string>>("targets", {"q_proj", "v_proj"});

    auto base_model = load_or_pretrain_llama(base);
    std::vector<std::string> modules;
    for (std::int64_t i = 0; i < base_model->config.num_hidden_layers; ++i) {
      for (const std::string& name : layer_projections(i)) modules.push_back(name);
    }
    auto targets = gpt::match_targets(
        config, modules, wanted,
        "modules: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or a full name "
        "such as model.layers.0.self_attn.q_proj");
    tasks.context = base_model->config.max_position_embeddings;
    gpt::SequenceEncoder encoder = sequence_encoder(*base_model);
    gpt::RoleData data = gpt::load_role_data(tasks, context, encoder);
    return std::make_unique<LlamaBackend>(std::move(base_model), std::move(targets),
                                          std::move(encoder), std::move(data), std::move(tasks),
                                          context, eval_batch_size);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("llama", "0.1.0", LlamaFactory)
