#include "base_model.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "lora_mlp.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"

namespace lorafed::mlp {
namespace {

constexpr std::int64_t kInputs = 784;

std::string fingerprint_of(const BaseOptions& base, const DataOptions& data) {
  std::string canonical = "mlp-v1|" + std::to_string(kInputs);
  for (std::int64_t width : base.hidden) canonical += "," + std::to_string(width);
  canonical += "|classes";
  for (std::int64_t c : base.pretrain_classes) canonical += "," + std::to_string(c);
  canonical += "|public" + std::to_string(data.public_examples) + "|epochs" +
               std::to_string(base.pretrain_epochs) + "|seed" + std::to_string(base.pretrain_seed);
  std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : canonical) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::filesystem::path cache_dir_of(const BaseOptions& base) {
  if (!base.cache_dir.empty()) return base.cache_dir;
  if (const char* dir = std::getenv("LORAFED_CACHE_DIR")) return dir;
  if (const char* home = std::getenv("HOME"))
    return std::filesystem::path(home) / ".cache" / "lorafed";
  return std::filesystem::temp_directory_path() / "lorafed-cache";
}

NamedTensors initial_weights(const BaseOptions& base, const std::vector<std::string>& names) {
  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(base.pretrain_seed);
  std::vector<std::int64_t> widths = {kInputs};
  widths.insert(widths.end(), base.hidden.begin(), base.hidden.end());
  widths.push_back(data::kFashionMnistClasses);
  NamedTensors weights;
  for (std::size_t i = 0; i < names.size(); ++i) {
    // torch.nn.Linear's default initialisation.
    const double bound = 1.0 / std::sqrt(static_cast<double>(widths[i]));
    weights[names[i] + ".weight"] =
        torch::empty({widths[i + 1], widths[i]}).uniform_(-bound, bound, generator);
    weights[names[i] + ".bias"] = torch::empty({widths[i + 1]}).uniform_(-bound, bound, generator);
  }
  return weights;
}

std::shared_ptr<BaseModel> pretrain(const BaseOptions& base, const DataOptions& data,
                                    std::vector<std::string> names) {
  auto model = std::make_shared<BaseModel>();
  model->layer_names = names;
  LoraMlp network(initial_weights(base, names), names, {});
  const Examples examples = public_slice(data, base.pretrain_classes);
  TrainOptions options;
  options.optimizer = "sgd";
  options.learning_rate = 0.05;
  options.momentum = 0.9;
  options.batch_size = 64;
  options.local_epochs = base.pretrain_epochs;
  const TrainReport report =
      train_classifier([&](const torch::Tensor& x) { return network.forward(x); },
                       network.local_parameters(), examples, options, base.pretrain_seed);
  spdlog::info(
      "pretrained the mlp base on {} public examples of classes {} ({} steps, loss {:.3f})",
      examples.labels.size(0), fmt::join(base.pretrain_classes, ","), report.steps,
      report.mean_loss);
  model->weights = network.base_weights();
  return model;
}

}  // namespace

std::vector<std::string> layer_names(std::size_t hidden_layers) {
  std::vector<std::string> names;
  for (std::size_t i = 1; i <= hidden_layers; ++i) names.push_back("fc" + std::to_string(i));
  names.push_back("head");
  return names;
}

std::shared_ptr<const BaseModel> load_or_pretrain_base(const BaseOptions& base,
                                                       const DataOptions& data) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const BaseModel>> loaded;
  const std::string fingerprint = fingerprint_of(base, data);
  std::lock_guard lock(mutex);
  if (auto cached = loaded[fingerprint].lock()) return cached;

  const auto names = layer_names(base.hidden.size());
  const std::filesystem::path file =
      cache_dir_of(base) / ("mlp-base-" + fingerprint + ".safetensors");
  std::shared_ptr<BaseModel> model;
  if (std::filesystem::exists(file)) {
    model = std::make_shared<BaseModel>();
    model->weights = load_safetensors(file).tensors;
    model->layer_names = names;
    for (const std::string& name : names) {
      if (!model->weights.contains(name + ".weight") || !model->weights.contains(name + ".bias")) {
        throw FormatError("cached base '" + file.string() + "' lacks layer '" + name +
                          "'; delete it to rebuild");
      }
    }
  } else {
    model = pretrain(base, data, names);
    save_safetensors(file, model->weights,
                     {{"format", "pt"}, {"lorafed_fingerprint", fingerprint}});
    spdlog::info("cached the mlp base at {}", file.string());
  }
  model->fingerprint = fingerprint;
  loaded[fingerprint] = model;
  return model;
}

}  // namespace lorafed::mlp
