#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "lorafed/adapter.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/truncated_svd.hpp"

namespace lorafed {

// A Hugging Face PEFT LoRA adapter directory (docs/outputs.md §PEFT export):
// adapter_model.safetensors with "base_model.model.<module>.lora_A.weight"
// (r × in) and "…lora_B.weight" (out × r), and adapter_config.json.
struct PeftAdapter {
  Adapter adapter;  // layers named by module path, alpha = lora_alpha
  nlohmann::json config;
};

// What an adapter's adapter_config.json says about the model it applies to.
struct PeftBase {
  std::string name_or_path;     // base_model_name_or_path: a model folder or an id
  std::string task_type;        // PEFT's task_type ("CAUSAL_LM"); empty: null
  bool fan_in_fan_out = false;  // the targets' weights are in × out (transformers' Conv1D)
};

// Writes a global change (out × in per layer) as PEFT adapters at one or
// more ranks. Each layer's SVD is computed once, here, and every export
// truncates it.
class PeftExporter {
 public:
  explicit PeftExporter(const NamedTensors& delta);

  // The largest numerical rank of the layers' changes: the count of singular
  // values above 1e-5 · σ_max (float32 round-off), at least 1.
  std::int64_t numerical_rank() const;

  // ‖ΔW − ΔW_r‖² / ‖ΔW‖² over all layers together: how much of the change
  // an export at `rank` leaves out (0 for a zero change).
  double relative_truncation_error(std::int64_t rank) const;

  // Writes the best rank-`rank` approximation of each layer's change,
  // U_r Σ_r V_rᵀ, split as (lora_alpha / r)·B·A (docs/algorithms.md
  // §Balanced split). A layer whose change has lower rank than `rank` gets
  // zero rows and columns, so every layer has the one r PEFT's config
  // names. lora_A is r × in and lora_B out × r whatever `base` says of
  // fan_in_fan_out (PEFT transposes B·A itself for such a base). Written
  // atomically, file by file.
  void write(const std::filesystem::path& directory, std::int64_t rank, double alpha,
             const PeftBase& base) const;
  // The same for a base known only by its id (no task type, out × in weights).
  void write(const std::filesystem::path& directory, std::int64_t rank, double alpha,
             const std::string& base_model) const {
    write(directory, rank, alpha, PeftBase{base_model, {}, false});
  }

 private:
  std::map<std::string, TruncatedSvd> svds_;  // by layer, at full rank
};

// Reads a PEFT adapter directory, or its adapter_model.safetensors (the
// config is read from beside it). Throws FormatError on another layout.
PeftAdapter load_peft_adapter(const std::filesystem::path& path);

}  // namespace lorafed
