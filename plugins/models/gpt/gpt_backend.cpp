// The `gpt` model backend: a GPT-2-layout transformer with LoRA on its
// projections, instruction-tuned on arithmetic word problems (README.md).
#include <torch/torch.h>

#include <spdlog/fmt/fmt.h>

#include "answer_evaluation.hpp"
#include "base_model.hpp"
#include "byte_tokenizer.hpp"
#include "gpt_model.hpp"
#include "instruction_data.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"

namespace {

using namespace lorafed;
using namespace lorafed::gpt;

class GptBackend final : public ModelBackend {
 public:
  GptBackend(std::shared_ptr<const BaseModel> base, std::vector<std::string> targets, RoleData data,
             std::int64_t eval_batch_size)
      : base_(std::move(base)),
        network_(base_->shape, base_->weights, std::move(targets)),
        data_(std::move(data)),
        eval_batch_size_(eval_batch_size),
        model_id_(fmt::format("gpt-{}x{}h{}-{}", base_->shape.n_layer, base_->shape.n_embd,
                              base_->shape.n_head, base_->fingerprint.substr(0, 8))) {}

  ModelSpec spec() const override { return network_.spec(model_id_); }
  std::int64_t num_train_examples() const override {
    return static_cast<std::int64_t>(data_.train_problems.size());
  }

  void install_adapter(const Adapter& adapter) override { network_.install_adapter(adapter); }
  Adapter adapter() const override { return network_.adapter(); }
  void install_merged_delta(const NamedTensors& delta) override {
    network_.install_merged_delta(delta);
  }
  void merge_adapter(const Adapter& adapter) override { network_.merge_into_base(adapter); }

  // Every base tensor once merging or training changed one of them.
  NamedTensors client_state() const override {
    if (!network_.base_changed()) return {};
    NamedTensors state;
    for (const auto& [name, tensor] : network_.base_weights()) state[name] = tensor.clone();
    return state;
  }
  void load_client_state(const NamedTensors& state) override {
    if (!state.empty()) network_.load_base(state);
  }

  // Next-token cross-entropy on the answers (the prompt is not a target).
  TrainReport train(ParameterGroup group, const TrainOptions& options,
                    std::uint64_t seed) override {
    if (num_train_examples() == 0)
      throw Error("gpt model: this instance has no training data (server role?)");
    NamedTensors parameters;
    if (group == ParameterGroup::kAdapter || group == ParameterGroup::kAll) {
      parameters = network_.adapter_parameters();
      if (parameters.empty()) throw Error("gpt model: no adapter installed to train");
    }
    if (group == ParameterGroup::kLocal || group == ParameterGroup::kAll) {
      parameters.merge(network_.local_parameters());
    }
    return train_classifier(
        [this](const torch::Tensor& tokens) { return network_.forward(tokens).transpose(1, 2); },
        parameters, data_.train, options, seed);
  }

  EvalReport evaluate() override {
    return evaluate_answers(network_, data_.test_problems, data_.test, eval_batch_size_);
  }

  // GPT2LMHeadModel: a causal language model whose projections are Conv1D
  // (weights in × out), so PEFT's fan_in_fan_out. base_ is the base as loaded
  // or pretrained: merge_adapter and kLocal training change this instance's
  // own copy (network_), never it.
  std::optional<HfBaseModel> write_hf_base(const std::filesystem::path& directory) const override {
    write_hf_model(directory, base_->shape, base_->weights, kEndOfText);
    return HfBaseModel{"CAUSAL_LM", true};
  }

 private:
  std::shared_ptr<const BaseModel> base_;  // shared by every instance in the process
  LoraGpt network_;
  RoleData data_;
  std::int64_t eval_batch_size_;
  std::string model_id_;
};

// PEFT's rule: a target names a module whose name is the target or ends
// with "." + target ("c_attn", "attn.c_proj", "transformer.h.0.mlp.c_fc").
// The matches come in the model's order.
std::vector<std::string> resolve_targets(const ConfigTable& config, const GptShape& shape,
                                         const std::vector<std::string>& wanted) {
  if (wanted.empty()) throw_config_error(config, "targets", "must name at least one module");
  const auto matches = [](const std::string& name, const std::string& target) {
    return name == target || name.ends_with("." + target);
  };
  std::vector<std::string> modules;
  for (std::int64_t i = 0; i < shape.n_layer; ++i) {
    for (const std::string& name : block_projections(i)) modules.push_back(name);
  }
  for (const std::string& target : wanted) {
    if (std::none_of(modules.begin(), modules.end(),
                     [&](const std::string& name) { return matches(name, target); })) {
      throw_config_error(config, "targets",
                         "names no module: '" + target +
                             "' (modules: c_attn, attn.c_proj, c_fc, mlp.c_proj, c_proj, or a "
                             "full name such as transformer.h.0.attn.c_attn)");
    }
  }
  std::vector<std::string> targets;
  for (const std::string& name : modules) {
    if (std::any_of(wanted.begin(), wanted.end(),
                    [&](const std::string& target) { return matches(name, target); }))
      targets.push_back(name);
  }
  return targets;
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
    base.corpus_dir = config.get<std::string>("corpus_dir", base.corpus_dir.string());
    base.pretrain_steps = config.get<std::int64_t>("pretrain_steps", base.pretrain_steps);
    if (base.pretrain_steps < 1) throw_config_error(config, "pretrain_steps", "must be positive");
    base.pretrain_batch_size =
        config.get<std::int64_t>("pretrain_batch_size", base.pretrain_batch_size);
    if (base.pretrain_batch_size < 1)
      throw_config_error(config, "pretrain_batch_size", "must be positive");
    base.pretrain_learning_rate =
        config.get<double>("pretrain_learning_rate", base.pretrain_learning_rate);
    if (!(base.pretrain_learning_rate > 0))
      throw_config_error(config, "pretrain_learning_rate", "must be positive");
    base.pretrain_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("pretrain_seed", 0));
    base.cache_dir = config.get<std::string>("cache_dir", "");

    TaskOptions tasks;
    tasks.tasks = config.get<std::vector<std::string>>("tasks", tasks.tasks);
    tasks.max_operand = config.get<std::int64_t>("max_operand", tasks.max_operand);
    tasks.train_per_task = config.get<std::int64_t>("train_per_task", tasks.train_per_task);
    tasks.test_per_task = config.get<std::int64_t>("test_per_task", tasks.test_per_task);
    tasks.partition = config.get<std::string>("partition", tasks.partition);
    tasks.dirichlet_alpha = config.get<double>("dirichlet_alpha", tasks.dirichlet_alpha);
    tasks.tasks_per_client = config.get<std::int64_t>("tasks_per_client", tasks.tasks_per_client);
    tasks.max_train_examples = config.get<std::int64_t>("max_train_examples", 0);
    tasks.eval_examples = config.get<std::int64_t>("eval_examples", 0);
    tasks.data_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("data_seed", 0));
    const std::int64_t eval_batch_size = config.get<std::int64_t>("eval_batch_size", 200);
    if (eval_batch_size < 1) throw_config_error(config, "eval_batch_size", "must be positive");
    const auto wanted =
        config.get<std::vector<std::string>>("targets", {"c_attn", "c_proj", "c_fc"});

    auto base_model = load_or_pretrain_base(base);
    if (base_model->shape.vocab_size < kByteVocabulary) {
      throw ConfigError("gpt model: the byte tokenizer needs a vocabulary of at least 257 tokens");
    }
    tasks.context = base_model->shape.context;
    auto targets = resolve_targets(config, base_model->shape, wanted);
    return std::make_unique<GptBackend>(std::move(base_model), std::move(targets),
                                        load_role_data(tasks, context), eval_batch_size);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("gpt", "0.1.0", GptFactory)
