// bench/llama: the `llama` backend's model at the sizes users tune.
//
//   train: LoRA fine-tuning throughput (tokens/s) and peak memory of one
//          process, for the default base's shape or SmolLM2-135M's, random
//          weights — the same steps bench/llama_training.py times in PyTorch
//          eager.
//   write: a random-weight checkpoint of a shape, as save_pretrained writes it.
//   load:  the peak memory and time of loading a checkpoint folder in a dtype
//          (one load per process, so the peak is the load's).
//
//   bench_llama train --shape default|smollm2-135m [--steps 10] [--batch 8]
//                     [--length 128] [--rank 8] [--threads 1]
//   bench_llama write --shape smollm2-135m|tinyllama-1.1b --dir DIR
//   bench_llama load --dir DIR [--dtype bfloat16|float32]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "bench/arguments.hpp"
#include "llama_base.hpp"
#include "llama_checkpoint.hpp"
#include "llama_model.hpp"
#include "lorafed/adapter.hpp"

namespace {

using namespace lorafed;
using namespace lorafed::llama;

constexpr const char* kUsage =
    "bench_llama train --shape default|smollm2-135m [--steps 10] [--batch 8] [--length 128] "
    "[--rank 8] [--threads 1]\n"
    "       bench_llama write --shape smollm2-135m|tinyllama-1.1b --dir DIR\n"
    "       bench_llama load --dir DIR [--dtype bfloat16|float32]";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "bench_llama: %s\nusage: %s\n", message.c_str(), kUsage);
  std::exit(2);
}

// The configurations of the published models (their config.json), and the
// backend's default base.
LlamaConfig shape_named(const std::string& name) {
  if (name == "default") return default_base_config();
  LlamaConfig config;
  config.rms_norm_eps = 1e-5;
  if (name == "smollm2-135m") {
    config.vocab_size = 49152;
    config.hidden_size = 576;
    config.intermediate_size = 1536;
    config.num_hidden_layers = 30;
    config.num_attention_heads = 9;
    config.num_key_value_heads = 3;
    config.head_dim = 64;
    config.max_position_embeddings = 8192;
    config.rope_theta = 100000;
    config.tie_word_embeddings = true;
    config.bos_token_id = 1;
    config.eos_token_ids = {2};
    return config;
  }
  if (name == "tinyllama-1.1b") {
    config.vocab_size = 32000;
    config.hidden_size = 2048;
    config.intermediate_size = 5632;
    config.num_hidden_layers = 22;
    config.num_attention_heads = 32;
    config.num_key_value_heads = 4;
    config.head_dim = 64;
    config.max_position_embeddings = 2048;
    config.tie_word_embeddings = false;
    config.bos_token_id = 1;
    config.eos_token_ids = {2};
    return config;
  }
  usage_error("unknown shape '" + name + "'");
}

// Random weights, N(0, 0.02²), norms' gains 1, in `dtype`.
NamedTensors random_weights(const LlamaConfig& config, torch::ScalarType dtype) {
  torch::manual_seed(1);
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(config)) {
    const bool gain = entry.name.ends_with("norm.weight");
    weights[entry.name] =
        (gain ? torch::ones(entry.shape) : torch::randn(entry.shape) * 0.02).to(dtype);
  }
  return weights;
}

// The process's peak resident memory so far (VmHWM), in MiB.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      status >> kib;
      return kib / 1024;
    }
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::int64_t parameter_count(const NamedTensors& weights) {
  std::int64_t count = 0;
  for (const auto& [name, tensor] : weights) count += tensor.numel();
  return count;
}

int train(std::map<std::string, std::string> options) {
  const LlamaConfig config = shape_named(options["shape"].empty() ? "default" : options["shape"]);
  const auto number = [&](const char* key, std::int64_t fallback) {
    return options.contains(key) ? std::stoll(options[key]) : fallback;
  };
  const std::int64_t steps = number("steps", 10);
  const std::int64_t batch = number("batch", 8);
  const std::int64_t length = number("length", 128);
  const std::int64_t rank = number("rank", 8);
  torch::set_num_threads(static_cast<int>(number("threads", 1)));

  const NamedTensors base = random_weights(config, torch::kFloat);
  std::vector<std::string> targets;
  for (std::int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".self_attn.";
    targets.push_back(prefix + "q_proj");
    targets.push_back(prefix + "v_proj");
  }
  LoraLlama model(config, base, targets);
  model.install_adapter(init_adapter(model.spec("bench"), rank, 16, 1));
  std::vector<torch::Tensor> parameters;
  for (auto& [name, tensor] : model.adapter_parameters())
    parameters.push_back(tensor.requires_grad_(true));
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-4));
  const torch::Tensor tokens = torch::randint(config.vocab_size, {batch, length + 1}, torch::kLong);
  const torch::Tensor inputs = tokens.slice(1, 0, length);
  const torch::Tensor labels = tokens.slice(1, 1);
  const auto step = [&] {
    optimizer.zero_grad();
    const torch::Tensor logits = model.forward(inputs);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, config.vocab_size}), labels.reshape({-1}));
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < 2; ++i) step();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < steps; ++i) step();
  const double seconds = seconds_since(start);
  std::printf(
      "lorafed: %.1fM parameters, LoRA r=%lld on q_proj and v_proj, batch %lld × %lld tokens, "
      "%d threads: %.0f tokens/s, %.1f ms/step, peak RSS %.0f MiB\n",
      static_cast<double>(parameter_count(base)) / 1e6, static_cast<long long>(rank),
      static_cast<long long>(batch), static_cast<long long>(length), torch::get_num_threads(),
      static_cast<double>(batch * length * steps) / seconds,
      1000 * seconds / static_cast<double>(steps), peak_rss_mib());
  return 0;
}

int write(std::map<std::string, std::string> options) {
  if (options["dir"].empty()) usage_error("write needs --dir");
  const LlamaConfig config = shape_named(options["shape"]);
  const auto start = std::chrono::steady_clock::now();
  const NamedTensors weights = random_weights(config, torch::kBFloat16);
  // Shards of about 1 GB, as save_pretrained's default cuts large models.
  write_llama_checkpoint(options["dir"], config, weights, 1'000'000'000);
  std::printf("wrote %.1fM parameters (bfloat16) to %s in %.1f s\n",
              static_cast<double>(parameter_count(weights)) / 1e6, options["dir"].c_str(),
              seconds_since(start));
  return 0;
}

int load(std::map<std::string, std::string> options) {
  if (options["dir"].empty()) usage_error("load needs --dir");
  const std::string dtype_name = options["dtype"].empty() ? "bfloat16" : options["dtype"];
  torch::ScalarType dtype = torch::kBFloat16;
  if (dtype_name == "float32") {
    dtype = torch::kFloat;
  } else if (dtype_name != "bfloat16") {
    usage_error("unknown dtype '" + dtype_name + "'");
  }
  const double before = peak_rss_mib();
  const auto start = std::chrono::steady_clock::now();
  const LlamaCheckpoint checkpoint = read_llama_checkpoint(options["dir"], dtype);
  const double seconds = seconds_since(start);
  // Touch every byte, as training's first forward pass does.
  double sum = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) sum += tensor.sum().item<double>();
  std::printf(
      "loaded %.1fM parameters as %s in %.1f s: peak RSS %.0f MiB (%.0f MiB before loading; "
      "checksum %.3g)\n",
      static_cast<double>(parameter_count(checkpoint.tensors)) / 1e6, dtype_name.c_str(), seconds,
      peak_rss_mib(), before, sum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("usage: %s\n", kUsage);
      return 0;
    }
  }
  if (argc < 2) usage_error("which benchmark: train, write or load");
  const std::string command = argv[1];
  // The options after the command come in pairs.
  lorafed::bench::check_arguments(argc - 1, argv + 1, kUsage);
  std::map<std::string, std::string> options;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (!key.starts_with("--")) usage_error("unexpected '" + key + "'");
    options[key.substr(2)] = argv[i + 1];
  }
  if (command == "train") return train(options);
  if (command == "write") return write(options);
  if (command == "load") return load(options);
  usage_error("unknown benchmark '" + command + "'");
}
