#include "linear_task.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "lorafed/seed.hpp"

namespace lorafed::linear {
namespace {

torch::Generator generator_for(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

torch::Tensor random_orthogonal(std::int64_t n, torch::Generator& generator) {
  return std::get<0>(torch::linalg::qr(torch::randn({n, n}, generator, torch::kFloat)));
}

Examples sample(const Task& task, const torch::Tensor& input_scale, std::int64_t n, double noise,
                torch::Generator& generator) {
  const torch::Tensor inputs =
      torch::randn({n, input_scale.size(0)}, generator, torch::kFloat) * input_scale;
  const torch::Tensor clean = torch::matmul(inputs, (task.base + task.target).t());
  return Examples{inputs, clean + noise * torch::randn(clean.sizes(), generator, torch::kFloat)};
}

}  // namespace

Task make_task(const TaskOptions& options) {
  torch::Generator generator =
      generator_for(derive_seed(options.task_seed, {0x5441534b /* TASK */}));
  const std::int64_t rank = std::min(options.in_features, options.out_features);
  const torch::Tensor u = random_orthogonal(options.out_features, generator).narrow(1, 0, rank);
  const torch::Tensor v = random_orthogonal(options.in_features, generator).narrow(1, 0, rank);
  const torch::Tensor sigma =
      torch::pow(torch::arange(1, rank + 1, torch::kFloat), -options.spectrum_decay);
  Task task;
  task.target = torch::matmul(u * sigma, v.t());
  task.base = torch::randn({options.out_features, options.in_features}, generator, torch::kFloat) /
              std::sqrt(static_cast<double>(options.in_features));
  return task;
}

RoleData make_role_data(const TaskOptions& options, const Task& task, const ModelContext& context) {
  RoleData data;
  if (context.role == ModelContext::Role::kServer) {
    torch::Generator generator =
        generator_for(derive_seed(options.task_seed, {0x53455256 /* SERV */}));
    data.test = sample(task, torch::ones({options.in_features}), options.test_examples,
                       options.noise, generator);
    return data;
  }
  torch::Generator generator = generator_for(
      derive_seed(options.task_seed,
                  {0x434c4e54 /* CLNT */, static_cast<std::uint64_t>(context.client_index)}));
  // Non-IID: a random half of the coordinates at full scale, the rest damped.
  const torch::Tensor order = torch::randperm(options.in_features, generator, torch::kLong);
  torch::Tensor scale = torch::full({options.in_features}, options.input_skew);
  scale.index_fill_(0, order.narrow(0, 0, options.in_features / 2), 1.0);
  data.train = sample(task, scale, options.examples_per_client, options.noise, generator);
  data.test = sample(task, scale, std::max<std::int64_t>(64, options.examples_per_client / 4),
                     options.noise, generator);
  return data;
}

}  // namespace lorafed::linear
