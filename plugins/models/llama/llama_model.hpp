#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "llama_config.hpp"
#include "lorafed/adapter.hpp"
#include "lorafed/model_spec.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::llama {

// The keys and values of every layer for the tokens seen so far (after the
// rotary embedding, before grouped heads are repeated), so generation
// computes each new token's attention without recomputing the prompt's.
struct KvCache {
  std::vector<torch::Tensor> keys;    // per layer: batch × kv heads × length × head_dim
  std::vector<torch::Tensor> values;  // the same
  std::int64_t length = 0;
};

// Rotary frequencies θ_j = rope_theta^(−2j/head_dim), j < head_dim/2, with the
// configured scaling (docs/algorithms.md §Llama-family models), float32.
torch::Tensor inverse_frequencies(const LlamaConfig& config);

// LlamaForCausalLM — token embedding, pre-RMSNorm layers of grouped-query
// attention with rotary position embeddings and a SwiGLU MLP, a final
// RMSNorm and a head (tied or not) — whose linear projections can carry LoRA
// factors (docs/algorithms.md §Notation): y = x W0ᵀ + b + scale·(x Aᵀ) Bᵀ
// with W0 out × in as stored, so ΔW = scale·B·A merges as W0 + ΔW. The base
// stays in the dtype it was given; activations and LoRA are float32.
class LoraLlama {
 public:
  // `base` holds checkpoint_layout(config); `targets` are layer_projections() names.
  LoraLlama(const LlamaConfig& config, const NamedTensors& base, std::vector<std::string> targets);

  const LlamaConfig& config() const { return config_; }
  ModelSpec spec(const std::string& model_id) const;

  void install_adapter(const Adapter& adapter);  // copies the factors
  Adapter adapter() const;
  void install_merged_delta(const NamedTensors& delta);
  // Adds ΔW to this model's own copy of the projections' weights.
  void merge_into_base(const Adapter& adapter);

  // The factors to train: "<projection>.lora_A", "<projection>.lora_B".
  NamedTensors adapter_parameters();
  // Every base tensor by its checkpoint name, first made this model's own
  // float32 copies so a base shared with other instances never changes.
  NamedTensors local_parameters();
  NamedTensors base_weights() const;  // checkpoint names, detached
  bool base_changed() const { return base_changed_; }
  void load_base(const NamedTensors& weights);

  // tokens: batch × length (int64) → logits batch × length × vocab (float32).
  // With a cache the tokens continue the cached ones (positions start at
  // cache->length) and their keys and values are appended to it.
  torch::Tensor forward(const torch::Tensor& tokens, KvCache* cache = nullptr) const;

 private:
  struct Projection {
    torch::Tensor merged;  // float32 W0 + ΔW when a merged delta is installed
    torch::Tensor lora_a;  // rank × in
    torch::Tensor lora_b;  // out × rank
  };
  torch::Tensor project(const std::string& name, const torch::Tensor& input) const;
  torch::Tensor weight(const std::string& name) const;  // float32
  // What every layer's attention uses alike for positions start.. of a
  // forward pass: the rotary table (length × head_dim) and the causal mask
  // (length × keys: 0, or −∞ for a key past the query), built once a pass.
  struct Positions {
    torch::Tensor cos;
    torch::Tensor sin;
    torch::Tensor mask;
  };
  Positions positions(std::int64_t start, std::int64_t length) const;
  torch::Tensor attention(const std::string& layer, const torch::Tensor& normed,
                          std::int64_t layer_index, const Positions& positions,
                          KvCache* cache) const;

  LlamaConfig config_;
  NamedTensors weights_;
  std::vector<std::string> targets_;
  std::map<std::string, Projection> projections_;
  torch::Tensor inverse_frequencies_;
  double alpha_ = 16;
  bool owns_base_ = false;
  bool base_changed_ = false;
};

}  // namespace lorafed::llama
