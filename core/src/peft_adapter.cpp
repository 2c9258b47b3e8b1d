#include "src/peft_adapter.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/safetensors.hpp"
#include "lorafed/truncated_svd.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "base_model.model.";
constexpr std::string_view kSuffixA = ".lora_A.weight";
constexpr std::string_view kSuffixB = ".lora_B.weight";

// The factors of one layer's truncation, padded with zeros up to `rank`.
LoraFactors factors_at_rank(const TruncatedSvd& svd, std::int64_t rank, double scale) {
  const std::int64_t available = std::min(rank, svd.s.size(0));
  LoraFactors factors = balanced_factors(svd, available, scale, 0, 0.0);
  if (available == rank) return factors;
  LoraFactors padded{at::zeros({rank, svd.v.size(0)}, at::kFloat),
                     at::zeros({svd.u.size(0), rank}, at::kFloat)};
  padded.a.narrow(0, 0, available).copy_(factors.a);
  padded.b.narrow(1, 0, available).copy_(factors.b);
  return padded;
}

}  // namespace

PeftExporter::PeftExporter(const NamedTensors& delta) {
  if (delta.empty()) throw Error("PEFT export: no layer to export");
  for (const auto& [layer, matrix] : delta) {
    const at::Tensor dense = matrix.to(at::kFloat);
    svds_.emplace(layer, truncated_svd(dense, std::min(dense.size(0), dense.size(1))));
  }
}

std::int64_t PeftExporter::numerical_rank() const {
  std::int64_t rank = 1;
  for (const auto& [layer, svd] : svds_) {
    const float largest = svd.s.numel() > 0 ? svd.s.max().item<float>() : 0.0f;
    if (largest <= 0) continue;
    rank = std::max(rank, (svd.s > 1e-5f * largest).sum().item<std::int64_t>());
  }
  return rank;
}

double PeftExporter::relative_truncation_error(std::int64_t rank) const {
  double left_out = 0, total = 0;
  for (const auto& [layer, svd] : svds_) {
    const at::Tensor squares = svd.s.to(at::kDouble).square();
    total += squares.sum().item<double>();
    const std::int64_t kept = std::min(rank, squares.size(0));
    left_out += squares.narrow(0, kept, squares.size(0) - kept).sum().item<double>();
  }
  return total > 0 ? left_out / total : 0.0;
}

void PeftExporter::write(const fs::path& directory, std::int64_t rank, double alpha,
                         const PeftBase& base) const {
  if (rank < 1) throw Error("PEFT export: rank must be at least 1");
  NamedTensors tensors;
  std::set<std::string> modules;
  const double scale = alpha / static_cast<double>(rank);
  for (const auto& [layer, svd] : svds_) {
    const LoraFactors factors = factors_at_rank(svd, rank, scale);
    const std::string path = std::string(kPrefix) + layer;
    tensors[path + std::string(kSuffixA)] = factors.a.contiguous();
    tensors[path + std::string(kSuffixB)] = factors.b.contiguous();
    // The full module path: PEFT then adapts exactly these modules, also
    // when only some of the modules with a given last name carry adapters.
    modules.insert(layer);
  }
  const nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", base.task_type.empty() ? nlohmann::json() : nlohmann::json(base.task_type)},
      {"base_model_name_or_path", base.name_or_path},
      {"revision", nullptr},
      {"r", rank},
      // PEFT writes an integer alpha; keep it one where it is.
      {"lora_alpha", alpha == std::floor(alpha) ? nlohmann::json(static_cast<std::int64_t>(alpha))
                                                : nlohmann::json(alpha)},
      {"lora_dropout", 0.0},
      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
      {"bias", "none"},
      {"fan_in_fan_out", base.fan_in_fan_out},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"use_rslora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
  };
  fs::create_directories(directory);
  save_safetensors(directory / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomically(directory / "adapter_config.json",
                        [&config](std::ostream& out) { out << config.dump(2) << "\n"; });
}

PeftAdapter load_peft_adapter(const fs::path& path) {
  const fs::path directory = fs::is_directory(path) ? path : path.parent_path();
  const fs::path weights = fs::is_directory(path) ? path / "adapter_model.safetensors" : path;
  const fs::path config_path = directory / "adapter_config.json";
  PeftAdapter result;
  std::ifstream config_file(config_path);
  if (!config_file) throw FormatError(config_path.string() + ": missing (a PEFT adapter has one)");
  try {
    result.config = nlohmann::json::parse(config_file);
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(config_path.string() + ": " + error.what());
  }
  if (result.config.value("peft_type", "") != "LORA" || !result.config.contains("r") ||
      !result.config.contains("lora_alpha")) {
    throw FormatError(config_path.string() + ": not a PEFT LoRA config (peft_type, r, lora_alpha)");
  }
  result.adapter.alpha = result.config["lora_alpha"].get<double>();
  const SafetensorsFile file = load_safetensors(weights);
  for (const auto& [name, tensor] : file.tensors) {
    const bool is_a = name.ends_with(kSuffixA);
    if (!name.starts_with(kPrefix) || !(is_a || name.ends_with(kSuffixB))) {
      throw FormatError(weights.string() + ": tensor '" + name +
                        "' is not named base_model.model.<module>.lora_A/B.weight");
    }
    const std::string layer =
        name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffixA.size());
    LoraFactors& factors = result.adapter.layers[layer];
    (is_a ? factors.a : factors.b) = tensor;
  }
  for (const auto& [layer, factors] : result.adapter.layers) {
    if (!factors.a.defined() || !factors.b.defined()) {
      throw FormatError(weights.string() + ": layer '" + layer + "' lacks lora_A or lora_B");
    }
  }
  return result;
}

}  // namespace lorafed
