#include "llama_model.hpp"

#include <cmath>
#include <numbers>

#include "llama_checkpoint.hpp"
#include "lorafed/error.hpp"

namespace lorafed::llama {
namespace {

namespace F = torch::nn::functional;

// x · rsqrt(mean(x²) + ε) · g, in float32 (LlamaRMSNorm).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double epsilon) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + epsilon) * gain;
}

// (x₁, x₂) → (−x₂, x₁) on the two halves of the last dimension.
torch::Tensor rotate_half(const torch::Tensor& x) {
  const std::int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

}  // namespace

torch::Tensor inverse_frequencies(const LlamaConfig& config) {
  const std::int64_t dim = config.head_dim;
  torch::Tensor inverse =
      1.0 / torch::pow(config.rope_theta, torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) /
                                              static_cast<double>(dim));
  const RopeScaling& scaling = config.rope_scaling;
  if (scaling.type == "linear") return inverse / scaling.factor;
  if (scaling.type != "llama3") return inverse;
  const auto context = static_cast<double>(scaling.original_max_position_embeddings);
  const double low_wavelength = context / scaling.low_freq_factor;
  const double high_wavelength = context / scaling.high_freq_factor;
  const torch::Tensor wavelength = 2 * std::numbers::pi / inverse;
  // Long wavelengths are divided by the factor, short ones kept, and those
  // between blended by where context / wavelength lies between the two factors.
  const torch::Tensor scaled =
      torch::where(wavelength > low_wavelength, inverse / scaling.factor, inverse);
  const torch::Tensor smooth = (context / wavelength - scaling.low_freq_factor) /
                               (scaling.high_freq_factor - scaling.low_freq_factor);
  const torch::Tensor blended = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
  const torch::Tensor medium = (wavelength >= high_wavelength) & (wavelength <= low_wavelength);
  return torch::where(medium, blended, scaled);
}

LoraLlama::LoraLlama(const LlamaConfig& config, const NamedTensors& base,
                     std::vector<std::string> targets)
    : config_(config),
      targets_(std::move(targets)),
      inverse_frequencies_(inverse_frequencies(config)) {
  config_.validate();
  for (const TensorLayout& entry : checkpoint_layout(config_)) {
    const auto found = base.find(entry.name);
    if (found == base.end() || found->second.sizes() != at::IntArrayRef(entry.shape)) {
      throw Error("llama model: base tensor '" + entry.name + "' missing or of the wrong shape");
    }
    weights_[entry.name] = found->second;
  }
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    for (const std::string& name : layer_projections(i)) projections_[name];
  }
  for (const std::string& target : targets_) {
    if (!projections_.contains(target))
      throw ConfigError("llama model: '" + target + "' is not a layer projection");
  }
}

ModelSpec LoraLlama::spec(const std::string& model_id) const {
  ModelSpec spec{model_id, {}, {}};
  for (const std::string& target : targets_) {
    const torch::Tensor& w = weights_.at(target + ".weight");
    spec.targets.push_back(TargetLayer{target, w.size(1), w.size(0)});
  }
  return spec;
}

void LoraLlama::install_adapter(const Adapter& adapter) {
  alpha_ = adapter.alpha;
  for (auto& [name, projection] : projections_) {
    projection.merged = torch::Tensor();
    const auto factors = adapter.layers.find(name);
    if (factors == adapter.layers.end()) {
      projection.lora_a = torch::Tensor();
      projection.lora_b = torch::Tensor();
      continue;
    }
    projection.lora_a = factors->second.a.detach().to(torch::kFloat).clone();
    projection.lora_b = factors->second.b.detach().to(torch::kFloat).clone();
  }
}

Adapter LoraLlama::adapter() const {
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

void LoraLlama::install_merged_delta(const NamedTensors& delta) {
  for (auto& [name, projection] : projections_) {
    projection.lora_a = torch::Tensor();
    projection.lora_b = torch::Tensor();
    const auto found = delta.find(name);
    projection.merged =
        found == delta.end() ? torch::Tensor() : weight(name + ".weight") + found->second;
  }
}

void LoraLlama::merge_into_base(const Adapter& adapter) {
  for (const auto& [name, delta] : adapter.dense_delta()) {
    torch::Tensor& w = weights_.at(name + ".weight");
    // A new tensor: the old one may be the base shared with other clients.
    w = (w.detach().to(torch::kFloat) + delta).to(w.scalar_type());
    base_changed_ = true;
  }
}

NamedTensors LoraLlama::adapter_parameters() {
  NamedTensors parameters;
  for (auto& [name, projection] : projections_) {
    if (!projection.lora_a.defined()) continue;
    parameters.emplace(name + ".lora_A", projection.lora_a);
    parameters.emplace(name + ".lora_B", projection.lora_b);
  }
  return parameters;
}

NamedTensors LoraLlama::local_parameters() {
  NamedTensors parameters;
  for (auto& [name, tensor] : weights_) {
    if (!owns_base_) tensor = tensor.detach().to(torch::kFloat).clone();
    parameters.emplace(name, tensor);
  }
  owns_base_ = true;
  base_changed_ = true;
  return parameters;
}

void LoraLlama::load_base(const NamedTensors& weights) {
  require_same_layout(base_weights(), weights, "llama model: client state");
  for (auto& [name, tensor] : weights_) tensor = weights.at(name).detach().clone();
  owns_base_ = true;
  base_changed_ = true;
}

NamedTensors LoraLlama::base_weights() const {
  NamedTensors weights;
  for (const auto& [name, tensor] : weights_) weights[name] = tensor.detach();
  return weights;
}

torch::Tensor LoraLlama::weight(const std::string& name) const {
  const torch::Tensor& stored = weights_.at(name);
  return stored.scalar_type() == torch::kFloat ? stored : stored.to(torch::kFloat);
}

torch::Tensor LoraLlama::project(const std::string& name, const torch::Tensor& input) const {
  const Projection& projection = projections_.at(name);
  const torch::Tensor w =
      projection.merged.defined() ? projection.merged : weight(name + ".weight");
  const auto bias = weights_.find(name + ".bias");
  torch::Tensor output =
      F::linear(input, w, bias == weights_.end() ? torch::Tensor() : weight(name + ".bias"));
  if (projection.lora_a.defined()) {
    const double scale = alpha_ / static_cast<double>(projection.lora_a.size(0));
    output = output + scale * F::linear(F::linear(input, projection.lora_a), projection.lora_b);
  }
  return output;
}

LoraLlama::Positions LoraLlama::positions(std::int64_t start, std::int64_t length) const {
  const torch::Tensor query_positions = torch::arange(start, start + length, torch::kLong);
  const torch::Tensor angles =
      torch::outer(query_positions.to(torch::kFloat), inverse_frequencies_);  // length × d/2
  const torch::Tensor both = torch::cat({angles, angles}, -1);                // length × d
  // Query i sits at position start + i; keys past it are hidden.
  const torch::Tensor key_positions = torch::arange(start + length, torch::kLong);
  const torch::Tensor future = key_positions.unsqueeze(0) > query_positions.unsqueeze(1);
  return {both.cos(), both.sin(),
          torch::zeros(future.sizes(), torch::kFloat)
              .masked_fill(future, -std::numeric_limits<float>::infinity())};
}

torch::Tensor LoraLlama::attention(const std::string& layer, const torch::Tensor& normed,
                                   std::int64_t layer_index, const Positions& positions,
                                   KvCache* cache) const {
  const std::int64_t batch = normed.size(0);
  const std::int64_t length = normed.size(1);
  const std::int64_t heads = config_.num_attention_heads;
  const std::int64_t kv_heads = config_.num_key_value_heads;
  const std::int64_t d = config_.head_dim;
  // batch × heads × length × head_dim
  torch::Tensor q =
      project(layer + "q_proj", normed).view({batch, length, heads, d}).transpose(1, 2);
  torch::Tensor k =
      project(layer + "k_proj", normed).view({batch, length, kv_heads, d}).transpose(1, 2);
  torch::Tensor v =
      project(layer + "v_proj", normed).view({batch, length, kv_heads, d}).transpose(1, 2);
  q = q * positions.cos + rotate_half(q) * positions.sin;
  k = k * positions.cos + rotate_half(k) * positions.sin;

  if (cache != nullptr) {
    auto& keys = cache->keys[static_cast<std::size_t>(layer_index)];
    auto& values = cache->values[static_cast<std::size_t>(layer_index)];
    keys = keys.defined() ? torch::cat({keys, k}, 2) : k;
    values = values.defined() ? torch::cat({values, v}, 2) : v;
    k = keys;
    v = values;
  }
  const std::int64_t total = k.size(2);
  // Grouped-query attention: query head h reads key/value head h / groups.
  const std::int64_t groups = config_.kv_groups();
  if (groups > 1) {
    k = k.unsqueeze(2)
            .expand({batch, kv_heads, groups, total, d})
            .reshape({batch, heads, total, d});
    v = v.unsqueeze(2)
            .expand({batch, kv_heads, groups, total, d})
            .reshape({batch, heads, total, d});
  }
  const torch::Tensor scores =
      torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(d)) + positions.mask;
  const torch::Tensor attended = torch::matmul(torch::softmax(scores, -1), v)
                                     .transpose(1, 2)
                                     .reshape({batch, length, config_.q_size()});
  return project(layer + "o_proj", attended);
}

torch::Tensor LoraLlama::forward(const torch::Tensor& tokens, KvCache* cache) const {
  const std::int64_t start = cache != nullptr ? cache->length : 0;
  const std::int64_t length = tokens.size(1);
  const std::int64_t end = start + length;
  if (end > config_.max_position_embeddings) {
    throw Error("llama model: " + std::to_string(end) + " tokens exceed max_position_embeddings (" +
                std::to_string(config_.max_position_embeddings) + ")");
  }
  if (config_.sliding_window > 0 && end > config_.sliding_window) {
    throw Error("llama model: " + std::to_string(end) + " tokens exceed the sliding window (" +
                std::to_string(config_.sliding_window) + "), which this backend does not apply");
  }
  if (cache != nullptr && cache->keys.empty()) {
    cache->keys.resize(static_cast<std::size_t>(config_.num_hidden_layers));
    cache->values.resize(static_cast<std::size_t>(config_.num_hidden_layers));
  }
  const double eps = config_.rms_norm_eps;
  torch::Tensor x =
      F::embedding(tokens, weights_.at("model.embed_tokens.weight")).to(torch::kFloat);
  const Positions at = positions(start, length);
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    torch::Tensor normed = rms_norm(x, weight(l + "input_layernorm.weight"), eps);
    x = x + attention(l + "self_attn.", normed, i, at, cache);
    normed = rms_norm(x, weight(l + "post_attention_layernorm.weight"), eps);
    x = x + project(l + "mlp.down_proj", torch::silu(project(l + "mlp.gate_proj", normed)) *
                                             project(l + "mlp.up_proj", normed));
  }
  if (cache != nullptr) cache->length = end;
  x = rms_norm(x, weight("model.norm.weight"), eps);
  return torch::matmul(
      x, weight(config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").t());
}

}  // namespace lorafed::llama
