// bench/lm_training: local training throughput of the `gpt` backend's model
// in tokens per second — LoRA fine-tuning on word problems (what a client
// does each round) and full training on corpus windows (pretraining the
// base) — for the default 4-block, 64-wide model and a wider one. Weights are
// random: throughput does not depend on them.
//
//   bench_lm_training [--steps 50]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "base_model.hpp"
#include "bench/arguments.hpp"
#include "gpt_model.hpp"
#include "instruction_data.hpp"
#include "lorafed/adapter.hpp"
#include "lorafed/classifier_training.hpp"

namespace {

using namespace lorafed;
using namespace lorafed::gpt;

NamedTensors random_base(const GptShape& shape) {
  torch::manual_seed(1);
  NamedTensors weights;
  for (const TensorLayout& entry : checkpoint_layout(shape))
    weights[entry.name] = torch::randn(entry.shape) * 0.02;
  return weights;
}

struct Row {
  std::string what;
  double tokens_per_step = 0;
  double seconds = 0;
  std::int64_t steps = 0;
};

Row time_training(const std::string& what, LoraGpt& model, const NamedTensors& parameters,
                  const data::Examples& examples, std::int64_t batch, std::int64_t steps) {
  TrainOptions options;
  options.optimizer = "adamw";
  options.learning_rate = 1e-3;
  options.batch_size = batch;
  options.local_steps = steps;
  const auto logits = [&](const torch::Tensor& t) { return model.forward(t).transpose(1, 2); };
  train_classifier(logits, parameters, examples, options, 0);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  train_classifier(logits, parameters, examples, options, 1);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {what, static_cast<double>(batch * examples.inputs.size(1)), seconds, steps};
}

}  // namespace

int main(int argc, char** argv) {
  lorafed::bench::check_arguments(argc, argv, "bench_lm_training [--steps 50]");
  std::int64_t steps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) != "--steps") {
      std::fprintf(stderr, "unknown option %s\nusage: bench_lm_training [--steps 50]\n", argv[i]);
      return 2;
    }
    steps = std::stoll(argv[i + 1]);
  }
  std::printf("threads %d, %lld steps per row\n\n", torch::get_num_threads(),
              static_cast<long long>(steps));
  std::printf("| model | training | tokens/step | tokens/s | ms/step |\n");
  std::printf("| --- | --- | --- | --- | --- |\n");
  TaskOptions tasks;
  tasks.max_operand = 9;
  const RoleData data =
      load_role_data(tasks, ModelContext{ModelContext::Role::kClient, 0, 1, 1, {}});
  const auto corpus = read_corpus("/usr/share/common-licenses");
  for (const std::int64_t width : {64, 128}) {
    GptShape shape;
    shape.n_embd = width;
    const NamedTensors base = random_base(shape);
    const std::string name = "4 × " + std::to_string(width);
    std::vector<Row> rows;
    for (const std::int64_t rank : {2, 16}) {
      LoraGpt targeted(shape, base, [&] {
        std::vector<std::string> all;
        for (std::int64_t b = 0; b < shape.n_layer; ++b)
          for (const auto& p : block_projections(b)) all.push_back(p);
        return all;
      }());
      targeted.install_adapter(init_adapter(targeted.spec("bench"), rank, 16, 1));
      rows.push_back(time_training("LoRA r=" + std::to_string(rank) + ", word problems", targeted,
                                   targeted.adapter_parameters(), data.train, 16, steps));
    }
    {
      LoraGpt model(shape, base, {});
      const torch::Tensor tokens = torch::tensor(corpus, torch::kLong);
      const torch::Tensor windows = tokens.unfold(0, shape.context + 1, shape.context / 2);
      const data::Examples examples{
          windows.slice(1, 0, shape.context).contiguous(), windows.slice(1, 1).contiguous(), {}};
      rows.push_back(time_training("full, corpus windows (pretraining)", model,
                                   model.local_parameters(), examples, 32, steps));
    }
    for (const Row& row : rows) {
      const double per_step = row.seconds / static_cast<double>(row.steps);
      std::printf("| %s | %s | %.0f | %.0f | %.1f |\n", name.c_str(), row.what.c_str(),
                  row.tokens_per_step, row.tokens_per_step / per_step, 1000 * per_step);
    }
  }
  return 0;
}
