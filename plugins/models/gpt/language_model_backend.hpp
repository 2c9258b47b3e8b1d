#pragma once
// What the language-model backends (`gpt`, `llama`) share as ModelBackends:
// a network whose projections carry LoRA, trained by next-token
// cross-entropy on the answers of word problems. A backend adds its spec,
// its evaluation and its Hugging Face export.

#include <torch/torch.h>

#include <string>
#include <utility>

#include "instruction_data.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/error.hpp"
#include "lorafed/model_backend.hpp"

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

 protected:
  // `name` is the backend's, as errors say it.
  LanguageModelBackend(std::string name, Network network, RoleData data)
      : name_(std::move(name)), network_(std::move(network)), data_(std::move(data)) {}

  std::string name_;
  Network network_;
  RoleData data_;
};

}  // namespace lorafed::gpt
