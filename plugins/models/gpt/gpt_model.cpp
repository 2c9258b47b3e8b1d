#include "gpt_model.hpp"

#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed::gpt {
namespace {

namespace F = torch::nn::functional;

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& gain,
                         const torch::Tensor& bias, double epsilon) {
  return torch::layer_norm(x, {x.size(-1)}, gain, bias, epsilon);
}

}  // namespace

LoraGpt::LoraGpt(const GptShape& shape, const NamedTensors& base, std::vector<std::string> targets)
    : shape_(shape), targets_(std::move(targets)) {
  shape_.validate();
  for (const TensorLayout& entry : checkpoint_layout(shape_)) {
    const auto found = base.find(entry.name);
    if (found == base.end() || found->second.sizes() != at::IntArrayRef(entry.shape)) {
      throw Error("gpt model: base tensor '" + entry.name + "' missing or of the wrong shape");
    }
    weights_[entry.name] = found->second;
  }
  for (std::int64_t i = 0; i < shape_.n_layer; ++i) {
    for (const std::string& name : block_projections(i)) projections_[name];
  }
  for (const std::string& target : targets_) {
    if (!projections_.contains(target))
      throw ConfigError("gpt model: '" + target + "' is not a block projection");
  }
}

ModelSpec LoraGpt::spec(const std::string& model_id) const {
  ModelSpec spec{model_id, {}, {}};
  for (const std::string& target : targets_) {
    const torch::Tensor& w = weight(target + ".weight");
    spec.targets.push_back(TargetLayer{target, w.size(0), w.size(1)});
  }
  return spec;
}

void LoraGpt::install_adapter(const Adapter& adapter) {
  alpha_ = adapter.alpha;
  for (auto& [name, projection] : projections_) {
    projection.merged = torch::Tensor();
    const auto factors = adapter.layers.find(name);
    if (factors == adapter.layers.end()) {
      projection.lora_a = torch::Tensor();
      projection.lora_b = torch::Tensor();
      continue;
    }
    projection.lora_a = factors->second.a.detach().clone();
    projection.lora_b = factors->second.b.detach().clone();
  }
}

Adapter LoraGpt::adapter() const {
  Adapter adapter;
  adapter.alpha = alpha_;
  for (const auto& [name, projection] : projections_) {
    if (projection.lora_a.defined()) {
      adapter.layers.emplace(name, LoraFactors{projection.lora_a.detach().clone(),
                                               projection.lora_b.detach().clone()});
    }
  }
  return adapter;
}

void LoraGpt::install_merged_delta(const NamedTensors& delta) {
  for (auto& [name, projection] : projections_) {
    projection.lora_a = torch::Tensor();
    projection.lora_b = torch::Tensor();
    const auto found = delta.find(name);
    projection.merged =
        found == delta.end() ? torch::Tensor() : weight(name + ".weight") + found->second.t();
  }
}

void LoraGpt::merge_into_base(const Adapter& adapter) {
  for (const auto& [name, delta] : adapter.dense_delta()) {
    torch::Tensor& w = weights_.at(name + ".weight");
    // A new tensor: the old one may be the base shared with other clients.
    w = w.detach() + delta.t();
    base_changed_ = true;
  }
}

NamedTensors LoraGpt::adapter_parameters() {
  NamedTensors parameters;
  for (auto& [name, projection] : projections_) {
    if (!projection.lora_a.defined()) continue;
    parameters.emplace(name + ".lora_A", projection.lora_a);
    parameters.emplace(name + ".lora_B", projection.lora_b);
  }
  return parameters;
}

NamedTensors LoraGpt::local_parameters() {
  NamedTensors parameters;
  for (auto& [name, tensor] : weights_) {
    if (!owns_base_) tensor = tensor.detach().clone();
    parameters.emplace(name, tensor);
  }
  owns_base_ = true;
  base_changed_ = true;
  return parameters;
}

void LoraGpt::load_base(const NamedTensors& weights) {
  require_same_layout(base_weights(), weights, "gpt model: client state");
  for (auto& [name, tensor] : weights_) tensor = weights.at(name).detach().clone();
  owns_base_ = true;
  base_changed_ = true;
}

NamedTensors LoraGpt::base_weights() const {
  NamedTensors weights;
  for (const auto& [name, tensor] : weights_) weights[name] = tensor.detach();
  return weights;
}

torch::Tensor LoraGpt::project(const std::string& name, const torch::Tensor& input) const {
  const Projection& projection = projections_.at(name);
  const torch::Tensor& w =
      projection.merged.defined() ? projection.merged : weight(name + ".weight");
  const torch::Tensor rows = input.reshape({-1, input.size(-1)});
  torch::Tensor output = torch::addmm(weight(name + ".bias"), rows, w);
  if (projection.lora_a.defined()) {
    const double scale = alpha_ / static_cast<double>(projection.lora_a.size(0));
    output = output + scale * F::linear(F::linear(rows, projection.lora_a), projection.lora_b);
  }
  auto sizes = input.sizes().vec();
  sizes.back() = w.size(1);
  return output.view(sizes);
}

torch::Tensor LoraGpt::forward(const torch::Tensor& tokens) const {
  const std::int64_t batch = tokens.size(0);
  const std::int64_t length = tokens.size(1);
  if (length > shape_.context) {
    throw Error("gpt model: " + std::to_string(length) + " tokens exceed the context of " +
                std::to_string(shape_.context));
  }
  const std::int64_t heads = shape_.n_head;
  const std::int64_t head_dim = shape_.n_embd / heads;
  const double eps = shape_.layer_norm_epsilon;
  const std::string t = "transformer.";
  torch::Tensor x =
      F::embedding(tokens, weight(t + "wte.weight")) + weight(t + "wpe.weight").slice(0, 0, length);
  const torch::Tensor future =
      torch::ones({length, length}, torch::kBool).triu(1);  // position j > i is hidden from i
  for (std::int64_t i = 0; i < shape_.n_layer; ++i) {
    const std::string h = t + "h." + std::to_string(i) + ".";
    torch::Tensor normed = layer_norm(x, weight(h + "ln_1.weight"), weight(h + "ln_1.bias"), eps);
    const auto qkv = project(h + "attn.c_attn", normed)
                         .view({batch, length, 3, heads, head_dim})
                         .permute({2, 0, 3, 1, 4});  // 3 × batch × heads × length × head_dim
    torch::Tensor scores =
        torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
    scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
    const torch::Tensor attended = torch::matmul(torch::softmax(scores, -1), qkv[2])
                                       .transpose(1, 2)
                                       .reshape({batch, length, shape_.n_embd});
    x = x + project(h + "attn.c_proj", attended);
    normed = layer_norm(x, weight(h + "ln_2.weight"), weight(h + "ln_2.bias"), eps);
    x = x + project(h + "mlp.c_proj", torch::gelu(project(h + "mlp.c_fc", normed), "tanh"));
  }
  x = layer_norm(x, weight(t + "ln_f.weight"), weight(t + "ln_f.bias"), eps);
  return torch::matmul(x, weight(t + "wte.weight").t());
}

}  // namespace lorafed::gpt
