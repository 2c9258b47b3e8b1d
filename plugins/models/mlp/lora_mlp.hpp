#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::mlp {

// A multilayer perceptron whose linear layers can carry LoRA factors:
// y = x W0ᵀ + b + scale · (x Aᵀ) Bᵀ   (docs/algorithms.md §Notation).
class LoraMlp {
 public:
  struct Layer {
    std::string name;
    torch::Tensor weight;  // out × in, base
    torch::Tensor bias;    // out
    torch::Tensor merged;  // weight + delta, when a merged delta is installed
    torch::Tensor lora_a;  // rank × in, when an adapter is installed
    torch::Tensor lora_b;  // out × rank
  };

  // `base` holds "<layer>.weight" and "<layer>.bias" for `layer_names`, in order.
  LoraMlp(const NamedTensors& base, std::vector<std::string> layer_names,
          std::vector<std::string> targets);

  ModelSpec spec(const std::string& model_id) const;

  void install_adapter(const Adapter& adapter);  // copies the factors
  Adapter adapter() const;
  void install_merged_delta(const NamedTensors& delta);
  // Adds scale·B·A to this network's own copy of the base weights.
  void merge_into_base(const Adapter& adapter);

  // The adapter factors ("<layer>.lora_A", "<layer>.lora_B"), or the
  // layers' own weights and biases ("<layer>.weight", "<layer>.bias"; first
  // copied so shared base weights are never changed), to train.
  NamedTensors adapter_parameters();
  NamedTensors local_parameters();

  // "<layer>.weight" and "<layer>.bias" of every layer, detached.
  NamedTensors base_weights() const;
  // True once merge_into_base or local_parameters (training) may have
  // changed the base weights from those it was made with.
  bool base_changed() const { return base_changed_; }
  // Makes copies of `weights` (base_weights() names, every one, same
  // shapes) this network's own base.
  void load_base(const NamedTensors& weights);

  torch::Tensor forward(const torch::Tensor& input) const;  // logits

 private:
  std::vector<Layer> layers_;
  std::vector<std::string> targets_;
  double alpha_ = 16;
  bool owns_base_ = false;
  bool base_changed_ = false;
};

}  // namespace lorafed::mlp
