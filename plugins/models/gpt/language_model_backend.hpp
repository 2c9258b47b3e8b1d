#pragma once
// What the language-model backends (`gpt`, `llama`) share as ModelBackends:
// a network whose projections carry LoRA, trained by next-token
// cross-entropy on the answers of word problems or of an instruction
// dataset, and evaluated as the task is scored (task_evaluation.hpp). A
// backend adds its spec, its text generation and its Hugging Face export.

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>

#include "instruction_data.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/error.hpp"
#include "lorafed/model_backend.hpp"
#include "task_evaluation.hpp"

namespace lorafed::gpt {

// Network: LoraGpt or llama::LoraLlama (forward, install_adapter, adapter,
// install_merged_delta, merge_into_base, adapter_parameters,
// local_parameters, base_weights, base_changed, load_base).
template <class Network>
class LanguageModelBackend : public ModelBackend {
 public:
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
      throw Error(name_ + " model: this instance has no training data (server role?)");
    NamedTensors parameters;
    if (group == ParameterGroup::kAdapter || group == ParameterGroup::kAll) {
      parameters = network_.adapter_parameters();
      if (parameters.empty()) throw Error(name_ + " model: no adapter installed to train");
    }
    if (group == ParameterGroup::kLocal || group == ParameterGroup::kAll) {
      parameters.merge(network_.local_parameters());
    }
    return train_classifier(
        [this](const torch::Tensor& tokens) { return network_.forward(tokens).transpose(1, 2); },
        parameters, data_.train, options, seed);
  }

  // The task's scores on this instance's test set; the server also appends
  // the first `samples` generations to generations.jsonl in its run folder.
  EvalReport evaluate() override {
    TaskEvaluation how;
    how.task = &task_;
    how.batch_size = eval_batch_size_;
    how.generations_file = generations_file_;
    how.evaluation = ++evaluations_;
    return evaluate_task(
        [this](const torch::Tensor& tokens) { return network_.forward(tokens); },
        [this](const std::vector<WordProblem>& problems, std::int64_t max_new_tokens,
               bool first_line) { return generate_answers(problems, max_new_tokens, first_line); },
        data_.test_problems, data_.test, how);
  }

 protected:
  // `name` is the backend's, as errors say it.
  LanguageModelBackend(std::string name, Network network, RoleData data, TaskOptions task,
                       const ModelContext& context, std::int64_t eval_batch_size)
      : name_(std::move(name)),
        network_(std::move(network)),
        data_(std::move(data)),
        task_(std::move(task)),
        eval_batch_size_(eval_batch_size) {
    if (context.role == ModelContext::Role::kServer && !context.output_directory.empty() &&
        task_.samples > 0) {
      generations_file_ = std::filesystem::path(context.output_directory) / "generations.jsonl";
    }
  }

  // Greedy continuations of the problems' prompts (AnswerGenerator).
  virtual std::vector<std::string> generate_answers(const std::vector<WordProblem>& problems,
                                                    std::int64_t max_new_tokens,
                                                    bool first_line) const = 0;

  std::string name_;
  Network network_;
  RoleData data_;
  TaskOptions task_;
  std::int64_t eval_batch_size_;
  std::filesystem::path generations_file_;  // empty: none written
  std::int64_t evaluations_ = 0;
};

}  // namespace lorafed::gpt
