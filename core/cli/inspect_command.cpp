#include "cli/inspect_command.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "lorafed/adapter.hpp"
#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"
#include "src/peft_adapter.hpp"
#include "src/server/checkpoint.hpp"

namespace lorafed::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kShownSingularValues = 8;
// The name columns are at least this wide, and as wide as the longest name.
constexpr std::size_t kMinLayerColumn = 24;
constexpr std::size_t kMinTensorColumn = 32;

std::string shape_of(const at::Tensor& tensor) {
  std::string text;
  for (const std::int64_t size : tensor.sizes()) {
    text += (text.empty() ? "" : "×") + std::to_string(size);
  }
  return text.empty() ? "scalar" : text;
}

double frobenius(const at::Tensor& tensor) {
  return tensor.to(at::kDouble).norm().item<double>();
}

// The largest singular values (at most `limit`) and how many are above 1e-5 · σ_max.
std::string spectrum(const at::Tensor& matrix, std::int64_t& numerical_rank,
                     std::int64_t limit = kShownSingularValues) {
  const at::Tensor s = at::linalg_svdvals(matrix.to(at::kDouble));
  const double largest = s.numel() > 0 ? s.max().item<double>() : 0.0;
  numerical_rank = largest > 0 ? (s > 1e-5 * largest).sum().item<std::int64_t>() : 0;
  std::string text;
  const std::int64_t available = std::min<std::int64_t>(s.numel(), limit);
  const std::int64_t shown = std::min<std::int64_t>(available, kShownSingularValues);
  for (std::int64_t i = 0; i < shown; ++i) {
    text += (i > 0 ? " " : "") + fmt::format("{:.4g}", s[i].item<double>());
  }
  if (available > shown) text += " …";
  return text;
}

template <typename Value>
std::size_t name_column(const std::map<std::string, Value>& entries, std::size_t minimum) {
  std::size_t width = minimum;
  for (const auto& [name, value] : entries) width = std::max(width, name.size());
  return width;
}

void print_adapter(const Adapter& adapter, std::ostream& out) {
  const std::size_t width = name_column(adapter.layers, kMinLayerColumn);
  out << fmt::format("{:<{}} {:>10} {:>10} {:>5} {:>10} {:>10} {:>10} {:>8}  {}\n", "layer", width,
                     "lora_A", "lora_B", "rank", "|A|", "|B|", "|ΔW|", "rank(ΔW)",
                     "σ(ΔW), largest first");
  const double scale = adapter.scale();
  for (const auto& [name, factors] : adapter.layers) {
    const at::Tensor delta =
        scale * at::matmul(factors.b.to(at::kDouble), factors.a.to(at::kDouble));
    std::int64_t rank = 0;
    // A rank-r product has at most r non-zero singular values; the rest is round-off.
    const std::string sigma = spectrum(delta, rank, factors.a.size(0));
    out << fmt::format("{:<{}} {:>10} {:>10} {:>5} {:>10.4g} {:>10.4g} {:>10.4g} {:>8}  {}\n", name,
                       width, shape_of(factors.a), shape_of(factors.b), factors.a.size(0),
                       frobenius(factors.a), frobenius(factors.b), frobenius(delta), rank, sigma);
  }
}

void print_tensors(const NamedTensors& tensors, std::ostream& out) {
  const std::size_t width = name_column(tensors, kMinTensorColumn);
  out << fmt::format("{:<{}} {:>12} {:>6} {:>10} {:>8}  {}\n", "tensor", width, "shape", "dtype",
                     "norm", "rank", "σ, largest first");
  for (const auto& [name, tensor] : tensors) {
    std::string rank = "", sigma = "";
    if (tensor.dim() == 2 && tensor.is_floating_point()) {
      std::int64_t numerical = 0;
      sigma = spectrum(tensor, numerical);
      rank = std::to_string(numerical);
    }
    const std::string value =
        tensor.is_floating_point() ? fmt::format("{:.4g}", frobenius(tensor)) : std::string("—");
    out << fmt::format("{:<{}} {:>12} {:>6} {:>10} {:>8}  {}\n", name, width, shape_of(tensor),
                       std::string(c10::toString(tensor.scalar_type())), value, rank, sigma);
  }
}

// A run's checkpoint folder (docs/outputs.md §A run directory).
bool is_checkpoint(const fs::path& directory) {
  return fs::is_directory(directory) && fs::exists(directory / "checkpoint.json");
}

// A Hugging Face model folder (config.json and model.safetensors), such as
// the base a run writes beside its adapters (peft/base).
bool is_hf_model(const fs::path& path) {
  return fs::is_directory(path) && !fs::exists(path / "adapter_config.json") &&
         fs::exists(path / "config.json") && fs::exists(path / "model.safetensors");
}

bool is_peft(const fs::path& path) {
  if (fs::is_directory(path)) return true;
  return fs::exists(path.parent_path() / "adapter_config.json") &&
         path.filename() == "adapter_model.safetensors";
}

bool is_lorafed_adapter(const NamedTensors& tensors) {
  return !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const auto& entry) {
    return entry.first.ends_with(".lora_A") || entry.first.ends_with(".lora_B");
  });
}

// A strategy's state holds factors whose scale is alpha/r (FedAvg's, HetLoRA's
// global adapter) without alpha, which only the checkpoint's identity record
// knows; nullopt for a checkpoint written before it did.
std::optional<double> checkpoint_alpha(const Checkpoint& checkpoint) {
  const auto alpha = checkpoint.identity.find("alpha");
  if (alpha == checkpoint.identity.end() || !alpha->is_number()) return std::nullopt;
  return alpha->get<double>();
}

// An adapter's alpha found outside its own file, and where.
struct KnownAlpha {
  double value;
  std::string source;
};

// Safetensors contents: a lorafed adapter as layers (its alpha from the
// lora_alpha metadata, else `known_alpha`), anything else tensor by tensor.
void print_contents(const std::string& title, const SafetensorsFile& file,
                    const std::optional<KnownAlpha>& known_alpha, std::ostream& out) {
  if (!is_lorafed_adapter(file.tensors)) {
    out << fmt::format("{}: {} tensors\n", title, file.tensors.size());
    for (const auto& [key, value] : file.metadata) out << "  " << key << " = " << value << "\n";
    print_tensors(file.tensors, out);
    return;
  }
  Adapter adapter = adapter_from_named_tensors(file.tensors, 1.0);
  std::string alpha_text = "no lora_alpha metadata: scale taken as 1";
  adapter.alpha = static_cast<double>(adapter.rank());
  if (const auto metadata = file.metadata.find("lora_alpha"); metadata != file.metadata.end()) {
    adapter.alpha = std::stod(metadata->second);
    alpha_text = fmt::format("lora_alpha {:g} (scale {:.4g})", adapter.alpha, adapter.scale());
  } else if (known_alpha) {
    adapter.alpha = known_alpha->value;
    alpha_text = fmt::format("lora_alpha {:g} (scale {:.4g}) from {}", adapter.alpha,
                             adapter.scale(), known_alpha->source);
  }
  out << fmt::format("{}: lorafed LoRA adapter, {} layers, rank {}, {}\n", title,
                     adapter.layers.size(), adapter.rank(), alpha_text);
  print_adapter(adapter, out);
}

}  // namespace

int inspect(const std::string& path_text, std::ostream& out) {
  const fs::path path(path_text);
  if (!fs::exists(path)) throw Error(path_text + ": no such file or directory");
  if (is_checkpoint(path)) {
    const Checkpoint checkpoint = Checkpoint::read(path, nlohmann::json::object());
    std::string identity;
    for (const auto& [key, value] : checkpoint.identity.items()) {
      identity += fmt::format("{}{} {}", identity.empty() ? "" : ", ", key,
                              value.is_string() ? value.get<std::string>() : value.dump());
    }
    out << fmt::format("{}: checkpoint after round {} ({})\n", path_text, checkpoint.round,
                       identity);
    std::optional<KnownAlpha> alpha;
    if (const auto found = checkpoint_alpha(checkpoint))
      alpha = KnownAlpha{*found, "checkpoint.json"};
    print_contents("strategy state", SafetensorsFile{checkpoint.state, {}}, alpha, out);
    return 0;
  }
  if (is_hf_model(path)) {
    const fs::path config_path = path / "config.json";
    std::ifstream config_file(config_path);
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(config_file);
    } catch (const nlohmann::json::exception& error) {
      throw FormatError(config_path.string() + ": " + error.what());
    }
    std::string architectures;
    for (const auto& name : config.value("architectures", nlohmann::json::array())) {
      architectures += (architectures.empty() ? "" : ", ") + name.get<std::string>();
    }
    out << fmt::format("{}: Hugging Face model, {} (model_type {})\n", path_text,
                       architectures.empty() ? "no architectures named" : architectures,
                       config.value("model_type", std::string("unknown")));
    print_contents((path / "model.safetensors").string(),
                   load_safetensors(path / "model.safetensors"), std::nullopt, out);
    return 0;
  }
  if (is_peft(path)) {
    const PeftAdapter peft = load_peft_adapter(path);
    out << fmt::format(
        "{}: PEFT LoRA adapter, {} layers, r {}, lora_alpha {:g} (scale {:.4g}), base {}\n",
        path_text, peft.adapter.layers.size(), peft.config["r"].get<std::int64_t>(),
        peft.adapter.alpha, peft.adapter.scale(),
        peft.config.value("base_model_name_or_path", std::string("(none)")));
    print_adapter(peft.adapter, out);
    return 0;
  }
  const SafetensorsFile file = load_safetensors(path);
  // A state file in a checkpoint folder: its run's alpha is beside it.
  std::optional<KnownAlpha> alpha;
  if (is_checkpoint(path.parent_path())) {
    const Checkpoint checkpoint = Checkpoint::read(path.parent_path(), nlohmann::json::object());
    if (const auto found = checkpoint_alpha(checkpoint)) {
      alpha = KnownAlpha{*found, (path.parent_path() / "checkpoint.json").string()};
    }
  }
  print_contents(path_text, file, alpha, out);
  return 0;
}

}  // namespace lorafed::cli
