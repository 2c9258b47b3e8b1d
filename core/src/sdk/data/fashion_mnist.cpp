#include "lorafed/data/fashion_mnist.hpp"

#include <ATen/ATen.h>

#include <map>
#include <mutex>

#include "lorafed/data/idx.hpp"
#include "lorafed/error.hpp"

namespace lorafed::data {
namespace {

std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    std::filesystem::path candidate = dir / (stem + suffix);
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw Error("Fashion-MNIST file '" + stem + "' not found in '" + dir.string() +
              "': install Debian's dataset-fashion-mnist package (scripts/setup.sh does)");
}

LabeledImages load_split(const std::filesystem::path& dir, const std::string& prefix) {
  LabeledImages split;
  split.images = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"));
  split.labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte")).to(at::kLong);
  if (split.images.dim() != 3 || split.labels.dim() != 1 ||
      split.images.size(0) != split.labels.size(0)) {
    throw FormatError("Fashion-MNIST '" + prefix + "' images and labels in '" + dir.string() +
                      "' do not match");
  }
  return split;
}

// Flattened to 784 features, normalised with Fashion-MNIST's mean and
// standard deviation over the training set.
at::Tensor features_of(const at::Tensor& images) {
  at::Tensor features = images.reshape({images.size(0), -1}).to(at::kFloat);
  return features.div_(255.0).sub_(0.2860).div_(0.3530);  // in place: one copy at a time
}

}  // namespace

std::shared_ptr<const FashionMnist> load_fashion_mnist(const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::map<std::filesystem::path, std::weak_ptr<const FashionMnist>> cache;
  std::lock_guard lock(mutex);
  if (auto cached = cache[dir].lock()) return cached;
  auto dataset = std::make_shared<FashionMnist>();
  dataset->train = load_split(dir, "train");
  dataset->test = load_split(dir, "t10k");
  cache[dir] = dataset;
  return dataset;
}

std::shared_ptr<const FashionMnistFeatures> fashion_mnist_features(
    const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::map<std::filesystem::path, std::weak_ptr<const FashionMnistFeatures>> cache;
  std::lock_guard lock(mutex);
  if (auto cached = cache[dir].lock()) return cached;
  const auto dataset = load_fashion_mnist(dir);
  auto features = std::make_shared<FashionMnistFeatures>();
  features->train = Examples{features_of(dataset->train.images), dataset->train.labels, {}};
  features->test = Examples{features_of(dataset->test.images), dataset->test.labels, {}};
  cache[dir] = features;
  return features;
}

Examples select_examples(const LabeledImages& split, std::span<const std::int64_t> indices) {
  const at::Tensor index =
      at::tensor(std::vector<std::int64_t>(indices.begin(), indices.end()), at::kLong);
  return Examples{
      features_of(split.images.index_select(0, index)), split.labels.index_select(0, index), {}};
}

std::vector<std::int64_t> label_list(const LabeledImages& split, std::int64_t count) {
  const at::Tensor labels = split.labels.slice(0, 0, count).contiguous();
  const auto* data = labels.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(data, data + labels.size(0));
}

}  // namespace lorafed::data
