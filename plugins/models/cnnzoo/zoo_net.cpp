#include "zoo_net.hpp"

#include <array>
#include <cmath>

#include "lorafed/error.hpp"

namespace lorafed::cnnzoo {
namespace {

constexpr std::int64_t kConv1Channels = 16;
constexpr std::int64_t kKernel = 5;

// PyTorch's default initialisation of Conv2d and Linear (Kaiming-uniform
// with a = √5): weights and biases uniform in ±1/√fan_in.
at::Tensor uniform(at::IntArrayRef shape, std::int64_t fan_in, at::Generator& generator) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return at::empty(shape, at::kFloat).uniform_(-bound, bound, generator);
}

}  // namespace

const Architecture& architecture(int id) {
  static const std::array<Architecture, 5> kZoo = {{
      {1, 32, 2000},
      {2, 16, 2000},
      {3, 32, 1000},
      {4, 32, 800},
      {5, 32, 500},
  }};
  if (id < 1 || id > static_cast<int>(kZoo.size())) {
    throw ConfigError("cnnzoo has models 1..5, not " + std::to_string(id));
  }
  return kZoo[id - 1];
}

ZooNet::ZooNet(const Architecture& architecture, std::uint64_t seed) : architecture_(architecture) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t c2 = architecture.conv2_channels;
  const std::int64_t flat = c2 * 4 * 4;  // 28 → conv 24 → pool 12 → conv 8 → pool 4
  const std::int64_t width = architecture.fc1_width;
  auto add = [&](const std::string& name, at::IntArrayRef weight_shape, std::int64_t fan_in) {
    local_.emplace(name + ".weight", uniform(weight_shape, fan_in, generator));
    local_.emplace(name + ".bias", uniform({weight_shape[0]}, fan_in, generator));
  };
  add("conv1", {kConv1Channels, 1, kKernel, kKernel}, kKernel * kKernel);
  add("conv2", {c2, kConv1Channels, kKernel, kKernel}, kConv1Channels * kKernel * kKernel);
  add("fc1", {width, flat}, flat);
  add("fc2", {kRepresentationWidth, width}, width);
  add("fc3", {kClasses, kRepresentationWidth}, kRepresentationWidth);
}

at::Tensor ZooNet::forward(const at::Tensor& images) const {
  const auto& p = local_;
  at::Tensor x = images.reshape({images.size(0), 1, 28, 28});
  x = at::max_pool2d(at::relu(at::conv2d(x, p.at("conv1.weight"), p.at("conv1.bias"))), {2, 2});
  x = at::max_pool2d(at::relu(at::conv2d(x, p.at("conv2.weight"), p.at("conv2.bias"))), {2, 2});
  x = at::relu(at::linear(x.flatten(1), p.at("fc1.weight"), p.at("fc1.bias")));
  const at::Tensor h = at::relu(at::linear(x, p.at("fc2.weight"), p.at("fc2.bias")));
  at::Tensor logits = at::linear(h, p.at("fc3.weight"), p.at("fc3.bias"));
  if (!adapter_.layers.empty()) {
    const LoraFactors& factors = adapter_.layers.at(kAdapterLayer);
    logits = logits + adapter_.scale() * at::linear(at::linear(h, factors.a), factors.b);
  }
  return logits;
}

NamedTensors ZooNet::local_tensors() const {
  return local_;  // handles: training changes the network's own tensors
}

void ZooNet::load_local(const NamedTensors& parameters) {
  for (const auto& [name, value] : parameters) {
    const auto found = local_.find(name);
    if (found == local_.end()) throw Error("cnnzoo: no local parameter '" + name + "'");
    if (!found->second.sizes().equals(value.sizes())) {
      throw Error("cnnzoo: '" + name + "' has shape " + c10::str(found->second.sizes()) +
                  ", cannot load " + c10::str(value.sizes()));
    }
    at::NoGradGuard no_grad;
    found->second.copy_(value);
  }
}

std::int64_t ZooNet::num_local_parameters() const {
  std::int64_t count = 0;
  for (const auto& [name, tensor] : local_) count += tensor.numel();
  return count;
}

void ZooNet::install_adapter(const Adapter& adapter) {
  adapter_ = adapter.clone();
}

Adapter ZooNet::adapter() const {
  return adapter_.clone();
}

NamedTensors ZooNet::adapter_tensors() const {
  return to_named_tensors(adapter_);  // handles, as above
}

double ZooNet::training_flops_per_example(ParameterGroup group) const {
  const auto c2 = static_cast<double>(architecture_.conv2_channels);
  const auto width = static_cast<double>(architecture_.fc1_width);
  const double rank = static_cast<double>(adapter_.rank());
  const bool local = group != ParameterGroup::kAdapter;
  const bool adapter = group != ParameterGroup::kLocal && rank > 0;
  struct Layer {
    double multiply_adds;  // per example, forward
    int position;          // along the forward pass; fc3 and lora_A read the same h
    bool trainable;
  };
  const std::array<Layer, 7> layers = {{
      {24.0 * 24 * 16 * 25, 0, local},     // conv1
      {8.0 * 8 * c2 * 16 * 25, 1, local},  // conv2
      {16.0 * c2 * width, 2, local},       // fc1
      {width * 500, 3, local},             // fc2
      {500.0 * 10, 4, local},              // fc3
      {rank * 500, 4, adapter},            // lora_A
      {10.0 * rank, 5, adapter},           // lora_B
  }};
  double flops = 0;
  for (const Layer& layer : layers) {
    flops += 2 * layer.multiply_adds;                       // forward
    if (layer.trainable) flops += 2 * layer.multiply_adds;  // gradient of its weights
    bool upstream_trainable = false;                        // gradient of its input needed?
    for (const Layer& other : layers) {
      upstream_trainable =
          upstream_trainable || (other.trainable && other.position < layer.position);
    }
    if (upstream_trainable) flops += 2 * layer.multiply_adds;
  }
  return flops;
}

}  // namespace lorafed::cnnzoo
