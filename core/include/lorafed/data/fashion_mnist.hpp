#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "lorafed/data/examples.hpp"
#include "lorafed/export.hpp"

namespace lorafed::data {

// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr std::int64_t kFashionMnistClasses = 10;

struct LabeledImages {
  at::Tensor images;  // N × 28 × 28, uint8
  at::Tensor labels;  // N, int64 in [0, 10)
};

struct FashionMnist {
  LabeledImages train;  // 60,000
  LabeledImages test;   // 10,000
};

// Loads the four IDX files once per directory per process and shares them
// (clients in one `simulate` process do not each hold a copy). Throws
// lorafed::Error saying which package to install when the files are missing.
LORAFED_API std::shared_ptr<const FashionMnist> load_fashion_mnist(
    const std::filesystem::path& dir = kFashionMnistDir);

// Both splits as Examples of the features select_examples() makes, made once
// per directory per process and shared (a client then holds its partition as
// Examples::rows: 60,000 × 784 floats once, not once per client).
struct FashionMnistFeatures {
  Examples train;
  Examples test;
};
LORAFED_API std::shared_ptr<const FashionMnistFeatures> fashion_mnist_features(
    const std::filesystem::path& dir = kFashionMnistDir);

// The images at `indices`, flattened to 784 features and normalised with
// Fashion-MNIST's training mean and standard deviation, and their labels.
LORAFED_API Examples select_examples(const LabeledImages& split,
                                     std::span<const std::int64_t> indices);

// The first `count` labels of a split, as plain integers (for partitioning).
LORAFED_API std::vector<std::int64_t> label_list(const LabeledImages& split, std::int64_t count);

}  // namespace lorafed::data
