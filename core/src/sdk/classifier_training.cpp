#include "lorafed/classifier_training.hpp"

#include <torch/torch.h>

#include "lorafed/error.hpp"
#include "lorafed/training_loop.hpp"

namespace lorafed {

TrainReport train_classifier(const Forward& forward, const NamedTensors& parameters,
                             const data::Examples& examples, const TrainOptions& options,
                             std::uint64_t seed) {
  return train_minibatches(
      [&](const at::Tensor& indices) {
        const data::Examples batch = examples.batch(indices);
        return torch::nn::functional::cross_entropy(forward(batch.inputs), batch.labels);
      },
      parameters, examples.size(), options, seed);
}

EvalReport evaluate_classifier(const Forward& forward, const data::Examples& examples,
                               std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  EvalReport report;
  const std::int64_t n = examples.size();
  report.num_examples = n;
  if (n == 0) return report;
  double loss_sum = 0;
  std::int64_t correct = 0;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(begin + batch_size, n);
    const data::Examples batch = examples.range(begin, end);
    const torch::Tensor logits = forward(batch.inputs);
    const torch::Tensor& labels = batch.labels;
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<std::int64_t>();
  }
  report.loss = loss_sum / static_cast<double>(n);
  report.metrics["accuracy"] = static_cast<double>(correct) / static_cast<double>(n);
  return report;
}

}  // namespace lorafed
