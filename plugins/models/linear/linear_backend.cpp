// The `linear` model backend: the synthetic task on which truncation bias
// shows (docs/algorithms.md §Synthetic linear task).
#include <torch/torch.h>

#include "linear_task.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/training_loop.hpp"

namespace {

using namespace lorafed;
using lorafed::linear::Examples;

constexpr const char* kLayer = "linear";

class LinearBackend final : public ModelBackend {
 public:
  LinearBackend(linear::Task task, linear::RoleData data, std::string model_id)
      : task_(std::move(task)),
        weight_(task_.base),
        data_(std::move(data)),
        model_id_(std::move(model_id)) {}

  ModelSpec spec() const override {
    return ModelSpec{model_id_, {{kLayer, task_.base.size(1), task_.base.size(0)}}, {}};
  }
  std::int64_t num_train_examples() const override {
    return data_.train.inputs.defined() ? data_.train.inputs.size(0) : 0;
  }

  void install_adapter(const Adapter& adapter) override {
    const LoraFactors& factors = adapter.layers.at(kLayer);
    a_ = factors.a.detach().clone();
    b_ = factors.b.detach().clone();
    scale_ = adapter.scale();
    merged_ = torch::Tensor();
  }
  Adapter adapter() const override {
    Adapter adapter;
    if (!a_.defined()) return adapter;  // none installed: no layers
    adapter.alpha = scale_ * static_cast<double>(a_.size(0));
    adapter.layers[kLayer] = LoraFactors{a_.detach().clone(), b_.detach().clone()};
    return adapter;
  }
  void install_merged_delta(const NamedTensors& delta) override {
    a_ = b_ = torch::Tensor();
    const auto found = delta.find(kLayer);
    merged_ = found == delta.end() ? weight_ : weight_ + found->second;
  }
  void merge_adapter(const Adapter& adapter) override {
    weight_ = weight_ + adapter.dense_delta().at(kLayer);
    merged_into_weight_ = true;
  }

  // The weight once merge_adapter changed it (only the adapter trains).
  NamedTensors client_state() const override {
    if (!merged_into_weight_) return {};
    return {{kLayer, weight_.clone()}};
  }
  void load_client_state(const NamedTensors& state) override {
    if (state.empty()) return;
    require_same_layout({{kLayer, weight_}}, state, "linear model: client state");
    weight_ = state.at(kLayer).clone();
    merged_into_weight_ = true;
  }

  TrainReport train(ParameterGroup group, const TrainOptions& options,
                    std::uint64_t seed) override {
    if (group != ParameterGroup::kAdapter)
      throw Error("linear model: only the adapter is trainable");
    if (!a_.defined()) throw Error("linear model: no adapter installed to train");
    if (num_train_examples() == 0) throw Error("linear model: no training data (server role?)");
    // Named as the SDK names LoRA factors, so that training hooks find them.
    const NamedTensors parameters = {{std::string(kLayer) + ".lora_A", a_},
                                     {std::string(kLayer) + ".lora_B", b_}};
    return train_minibatches(
        [this](const at::Tensor& indices) {
          return torch::mse_loss(forward(data_.train.inputs.index_select(0, indices)),
                                 data_.train.targets.index_select(0, indices));
        },
        parameters, num_train_examples(), options, seed);
  }

  EvalReport evaluate() override {
    torch::NoGradGuard no_grad;
    EvalReport report;
    report.num_examples = data_.test.inputs.size(0);
    report.loss = torch::mse_loss(forward(data_.test.inputs), data_.test.targets).item<double>();
    // ||ΔW − ΔW*||_F, the distance of the model's change from the optimum.
    const torch::Tensor change = effective_weight() - task_.base;
    const double error = (change - task_.target).norm().item<double>();
    report.metrics["global_error"] = error;
    report.metrics["relative_error"] = error / task_.target.norm().item<double>();
    return report;
  }

 private:
  torch::Tensor effective_weight() const {
    if (merged_.defined()) return merged_;
    if (a_.defined()) return weight_ + scale_ * torch::matmul(b_, a_);
    return weight_;
  }
  torch::Tensor forward(const torch::Tensor& inputs) const {
    if (merged_.defined() || !a_.defined()) return torch::matmul(inputs, effective_weight().t());
    return torch::matmul(inputs, weight_.t()) +
           scale_ * torch::matmul(torch::matmul(inputs, a_.t()), b_.t());
  }

  linear::Task task_;
  torch::Tensor weight_;  // W0 plus anything merged (FLoRA)
  bool merged_into_weight_ = false;
  torch::Tensor merged_;  // weight_ + a global delta, for evaluation
  torch::Tensor a_, b_;
  double scale_ = 1.0;
  linear::RoleData data_;
  std::string model_id_;
};

class LinearFactory final : public ModelFactory {
 public:
  std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                       const ModelContext& context) const override {
    linear::TaskOptions options;
    auto positive = [&](const char* key, std::int64_t fallback) {
      const std::int64_t value = config.get<std::int64_t>(key, fallback);
      if (value < 1) throw_config_error(config, key, "must be positive");
      return value;
    };
    options.in_features = positive("in_features", options.in_features);
    options.out_features = positive("out_features", options.out_features);
    options.examples_per_client = positive("examples_per_client", options.examples_per_client);
    options.test_examples = positive("test_examples", options.test_examples);
    options.spectrum_decay = config.get<double>("spectrum_decay", options.spectrum_decay);
    if (options.spectrum_decay < 0)
      throw_config_error(config, "spectrum_decay", "must not be negative");
    options.noise = config.get<double>("noise", options.noise);
    if (options.noise < 0) throw_config_error(config, "noise", "must not be negative");
    options.input_skew = config.get<double>("input_skew", options.input_skew);
    if (!(options.input_skew > 0 && options.input_skew <= 1))
      throw_config_error(config, "input_skew", "must be in (0, 1]");
    options.task_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("task_seed", 0));
    const std::string model_id = "linear-" + std::to_string(options.out_features) + "x" +
                                 std::to_string(options.in_features) + "-task" +
                                 std::to_string(options.task_seed);
    linear::Task task = linear::make_task(options);
    linear::RoleData data = linear::make_role_data(options, task, context);
    return std::make_unique<LinearBackend>(std::move(task), std::move(data), model_id);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("linear", "0.1.0", LinearFactory)
