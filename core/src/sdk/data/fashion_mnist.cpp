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

Examples select_examples(const LabeledImages& split, std::span<const std::int64_t> indices) {
  const at::Tensor index =
      at::tensor(std::vector<std::int64_t>(indices.begin(), indices.end()), at::kLong);
  const at::Tensor images = split.images.index_select(0, index);
  // Fashion-MNIST's mean and standard deviation over the training set.
  at::Tensor inputs =
      (images.reshape({images.size(0), -1}).to(at::kFloat) / 255.0 - 0.2860) / 0.3530;
  return Examples{std::move(inputs), split.labels.index_select(0, index)};
}

std::vector<std::int64_t> label_list(const LabeledImages& split, std::int64_t count) {
  const at::Tensor labels = split.labels.slice(0, 0, count).contiguous();
  const auto* data = labels.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(data, data + labels.size(0));
}

}  // namespace lorafed::data
