#include "lora_mlp.hpp"

#include <algorithm>

#include "lorafed/error.hpp"

namespace lorafed::mlp {

LoraMlp::LoraMlp(const NamedTensors& base, std::vector<std::string> layer_names,
                 std::vector<std::string> targets)
    : targets_(std::move(targets)) {
  for (const std::string& name : layer_names) {
    Layer layer;
    layer.name = name;
    layer.weight = base.at(name + ".weight");
    layer.bias = base.at(name + ".bias");
    layers_.push_back(std::move(layer));
  }
  for (const std::string& target : targets_) {
    if (std::find(layer_names.begin(), layer_names.end(), target) == layer_names.end()) {
      throw ConfigError("mlp model: target '" + target + "' is not one of its layers");
    }
  }
}

ModelSpec LoraMlp::spec(const std::string& model_id) const {
  ModelSpec spec{model_id, {}, {}};
  for (const Layer& layer : layers_) {
    if (std::find(targets_.begin(), targets_.end(), layer.name) != targets_.end()) {
      spec.targets.push_back(TargetLayer{layer.name, layer.weight.size(1), layer.weight.size(0)});
    }
  }
  return spec;
}

void LoraMlp::install_adapter(const Adapter& adapter) {
  alpha_ = adapter.alpha;
  for (Layer& layer : layers_) {
    layer.merged = torch::Tensor();
    const auto factors = adapter.layers.find(layer.name);
    if (factors == adapter.layers.end()) {
      layer.lora_a = torch::Tensor();
      layer.lora_b = torch::Tensor();
      continue;
    }
    layer.lora_a = factors->second.a.detach().clone();
    layer.lora_b = factors->second.b.detach().clone();
  }
}

Adapter LoraMlp::adapter() const {
  Adapter adapter;
  adapter.alpha = alpha_;
  for (const Layer& layer : layers_) {
    if (layer.lora_a.defined()) {
      adapter.layers.emplace(
          layer.name, LoraFactors{layer.lora_a.detach().clone(), layer.lora_b.detach().clone()});
    }
  }
  return adapter;
}

void LoraMlp::install_merged_delta(const NamedTensors& delta) {
  for (Layer& layer : layers_) {
    layer.lora_a = torch::Tensor();
    layer.lora_b = torch::Tensor();
    const auto found = delta.find(layer.name);
    layer.merged = found == delta.end() ? torch::Tensor() : layer.weight + found->second;
  }
}

void LoraMlp::merge_into_base(const Adapter& adapter) {
  const NamedTensors delta = adapter.dense_delta();
  for (Layer& layer : layers_) {
    const auto found = delta.find(layer.name);
    if (found == delta.end()) continue;
    // A new tensor: the old one may be the base shared with other clients.
    layer.weight = layer.weight.detach() + found->second;
    base_changed_ = true;
  }
}

NamedTensors LoraMlp::adapter_parameters() {
  NamedTensors parameters;
  for (Layer& layer : layers_) {
    if (!layer.lora_a.defined()) continue;
    parameters.emplace(layer.name + ".lora_A", layer.lora_a);
    parameters.emplace(layer.name + ".lora_B", layer.lora_b);
  }
  return parameters;
}

NamedTensors LoraMlp::local_parameters() {
  NamedTensors parameters;
  for (Layer& layer : layers_) {
    if (!owns_base_) {
      layer.weight = layer.weight.detach().clone();
      layer.bias = layer.bias.detach().clone();
    }
    parameters.emplace(layer.name + ".weight", layer.weight);
    parameters.emplace(layer.name + ".bias", layer.bias);
  }
  owns_base_ = true;
  base_changed_ = true;
  return parameters;
}

NamedTensors LoraMlp::base_weights() const {
  NamedTensors weights;
  for (const Layer& layer : layers_) {
    weights[layer.name + ".weight"] = layer.weight.detach();
    weights[layer.name + ".bias"] = layer.bias.detach();
  }
  return weights;
}

void LoraMlp::load_base(const NamedTensors& weights) {
  require_same_layout(base_weights(), weights, "mlp model: client state");
  for (Layer& layer : layers_) {
    layer.weight = weights.at(layer.name + ".weight").detach().clone();
    layer.bias = weights.at(layer.name + ".bias").detach().clone();
  }
  owns_base_ = true;
  base_changed_ = true;
}

torch::Tensor LoraMlp::forward(const torch::Tensor& input) const {
  torch::Tensor hidden = input;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const torch::Tensor& weight = layer.merged.defined() ? layer.merged : layer.weight;
    torch::Tensor output = torch::nn::functional::linear(hidden, weight, layer.bias);
    if (layer.lora_a.defined()) {
      const double scale = alpha_ / static_cast<double>(layer.lora_a.size(0));
      output =
          output + scale * torch::nn::functional::linear(
                               torch::nn::functional::linear(hidden, layer.lora_a), layer.lora_b);
    }
    hidden = i + 1 < layers_.size() ? torch::relu(output) : output;
  }
  return hidden;
}

}  // namespace lorafed::mlp
