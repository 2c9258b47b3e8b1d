#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lorafed/named_tensors.hpp"
#include "mlp_data.hpp"

namespace lorafed::mlp {

// The "foundation" the federation fine-tunes (docs/results.md): an MLP pretrained
// once on a public slice of the training set, restricted to some classes so
// that fine-tuning on all ten has something to learn. Cached as safetensors.
struct BaseOptions {
  std::vector<std::int64_t> hidden = {256, 128};
  std::vector<std::int64_t> pretrain_classes = {0, 1, 2, 3, 4};
  std::int64_t pretrain_epochs = 5;
  std::uint64_t pretrain_seed = 0;
  std::filesystem::path cache_dir;  // empty: $LORAFED_CACHE_DIR, else ~/.cache/lorafed
};

struct BaseModel {
  NamedTensors weights;                  // "<layer>.weight", "<layer>.bias"
  std::vector<std::string> layer_names;  // fc1, fc2, ..., head
  std::string fingerprint;               // identifies options and data
};

std::vector<std::string> layer_names(std::size_t hidden_layers);

// Loads the cached base for these options, pretraining and caching it first
// if needed. Shared within a process.
std::shared_ptr<const BaseModel> load_or_pretrain_base(const BaseOptions& base,
                                                       const DataOptions& data);

}  // namespace lorafed::mlp
