#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "gpt_layout.hpp"
#include "lorafed/adapter.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::gpt {

// A decoder-only transformer in the GPT-2 layout — token and position
// embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP,
// a final LayerNorm and a head tied to the token embedding — whose
// projections can carry LoRA factors (docs/algorithms.md §Notation): a
// projection with Conv1D weight W0 (in × out) computes
//   y = x W0 + b + scale · (x Aᵀ) Bᵀ,
// so ΔW = scale·B·A is out × in like every other target and merges as W0 + ΔWᵀ.
class LoraGpt {
 public:
  // `base` holds checkpoint_layout(shape); `targets` are projection names
  // (block_projections()).
  LoraGpt(const GptShape& shape, const NamedTensors& base, std::vector<std::string> targets);

  const GptShape& shape() const { return shape_; }
  ModelSpec spec(const std::string& model_id) const;

  void install_adapter(const Adapter& adapter);  // copies the factors
  Adapter adapter() const;
  void install_merged_delta(const NamedTensors& delta);
  // Adds ΔW to this model's own copy of the projections' weights.
  void merge_into_base(const Adapter& adapter);

  // The adapter factors to train: "<projection>.lora_A", "<projection>.lora_B".
  NamedTensors adapter_parameters();
  // Every base tensor by its checkpoint_layout() name, first copied so a
  // base shared with other instances is never changed.
  NamedTensors local_parameters();
  NamedTensors base_weights() const;  // checkpoint_layout() names, detached
  // True once merge_into_base or local_parameters (training) may have
  // changed the base from the one it was made with.
  bool base_changed() const { return base_changed_; }
  // Makes copies of `weights` (base_weights() names, every one, same
  // shapes) this model's own base.
  void load_base(const NamedTensors& weights);

  // tokens: batch × length (int64, length ≤ context) → logits batch × length × vocab.
  torch::Tensor forward(const torch::Tensor& tokens) const;

 private:
  // LoRA state of one projection; its weight and bias live in weights_.
  struct Projection {
    torch::Tensor merged;  // weight + ΔWᵀ when a merged delta is installed
    torch::Tensor lora_a;  // rank × in
    torch::Tensor lora_b;  // out × rank
  };
  torch::Tensor project(const std::string& name, const torch::Tensor& input) const;
  const torch::Tensor& weight(const std::string& name) const { return weights_.at(name); }

  GptShape shape_;
  NamedTensors weights_;
  std::vector<std::string> targets_;
  std::map<std::string, Projection> projections_;  // every block projection
  double alpha_ = 16;
  bool owns_base_ = false;
  bool base_changed_ = false;
};

}  // namespace lorafed::gpt
