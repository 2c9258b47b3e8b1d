// The `mlp` model backend: an MLP on Fashion-MNIST with LoRA on its layers.
#include <torch/torch.h>

#include "base_model.hpp"
#include "lora_mlp.hpp"
#include "lorafed/classifier_training.hpp"
#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "mlp_data.hpp"

namespace {

using namespace lorafed;

class MlpBackend final : public ModelBackend {
 public:
  MlpBackend(std::shared_ptr<const mlp::BaseModel> base, std::vector<std::string> targets,
             mlp::RoleData data, std::int64_t eval_batch_size)
      : base_(std::move(base)),
        network_(base_->weights, base_->layer_names, std::move(targets)),
        data_(std::move(data)),
        eval_batch_size_(eval_batch_size) {
    std::string id = "mlp-784";
    for (const std::string& name : base_->layer_names) {
      id += "x" + std::to_string(base_->weights.at(name + ".weight").size(0));
    }
    model_id_ = id + "-" + base_->fingerprint.substr(0, 8);
  }

  ModelSpec spec() const override { return network_.spec(model_id_); }
  std::int64_t num_train_examples() const override { return data_.train.size(); }

  void install_adapter(const Adapter& adapter) override { network_.install_adapter(adapter); }
  Adapter adapter() const override { return network_.adapter(); }
  void install_merged_delta(const NamedTensors& delta) override {
    network_.install_merged_delta(delta);
  }
  void merge_adapter(const Adapter& adapter) override { network_.merge_into_base(adapter); }

  // The weights and biases once merging or training changed them: the
  // model has no local parameters apart from its base.
  NamedTensors client_state() const override {
    if (!network_.base_changed()) return {};
    NamedTensors state;
    for (const auto& [name, tensor] : network_.base_weights()) state[name] = tensor.clone();
    return state;
  }
  void load_client_state(const NamedTensors& state) override {
    if (!state.empty()) network_.load_base(state);
  }

  TrainReport train(ParameterGroup group, const TrainOptions& options,
                    std::uint64_t seed) override {
    if (num_train_examples() == 0)
      throw Error("mlp model: this instance has no training data (server role?)");
    NamedTensors parameters;
    if (group == ParameterGroup::kAdapter || group == ParameterGroup::kAll) {
      parameters = network_.adapter_parameters();
      if (parameters.empty()) throw Error("mlp model: no adapter installed to train");
    }
    if (group == ParameterGroup::kLocal || group == ParameterGroup::kAll) {
      parameters.merge(network_.local_parameters());
    }
    return train_classifier([this](const torch::Tensor& x) { return network_.forward(x); },
                            parameters, data_.train, options, seed);
  }

  EvalReport evaluate() override {
    return evaluate_classifier([this](const torch::Tensor& x) { return network_.forward(x); },
                               data_.test, eval_batch_size_);
  }

 private:
  std::shared_ptr<const mlp::BaseModel> base_;  // shared by every instance in the process
  mlp::LoraMlp network_;
  mlp::RoleData data_;
  std::int64_t eval_batch_size_;
  std::string model_id_;
};

class MlpFactory final : public ModelFactory {
 public:
  std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                       const ModelContext& context) const override {
    mlp::BaseOptions base;
    base.hidden = config.get<std::vector<std::int64_t>>("hidden", base.hidden);
    if (base.hidden.empty())
      throw_config_error(config, "hidden", "must list at least one hidden layer width");
    for (std::int64_t width : base.hidden) {
      if (width < 1) throw_config_error(config, "hidden", "widths must be positive");
    }
    base.pretrain_classes =
        config.get<std::vector<std::int64_t>>("pretrain_classes", base.pretrain_classes);
    for (std::int64_t c : base.pretrain_classes) {
      if (c < 0 || c > 9) throw_config_error(config, "pretrain_classes", "must be classes 0..9");
    }
    if (base.pretrain_classes.empty())
      throw_config_error(config, "pretrain_classes", "must not be empty");
    base.pretrain_epochs = config.get<std::int64_t>("pretrain_epochs", base.pretrain_epochs);
    if (base.pretrain_epochs < 1)
      throw_config_error(config, "pretrain_epochs", "must be at least 1");
    base.pretrain_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("pretrain_seed", 0));
    base.cache_dir = config.get<std::string>("cache_dir", "");

    mlp::DataOptions data;
    data.data_dir = config.get<std::string>("data_dir", data::kFashionMnistDir);
    data.partition = config.get<std::string>("partition", data.partition);
    if (data.partition != "iid" && data.partition != "dirichlet") {
      throw_config_error(config, "partition",
                         "must be \"iid\" or \"dirichlet\", got \"" + data.partition + "\"");
    }
    data.dirichlet_alpha = config.get<double>("dirichlet_alpha", data.dirichlet_alpha);
    if (!(data.dirichlet_alpha > 0))
      throw_config_error(config, "dirichlet_alpha", "must be positive");
    data.public_examples = config.get<std::int64_t>("public_examples", data.public_examples);
    if (data.public_examples < 1 || data.public_examples > 30000) {
      throw_config_error(config, "public_examples", "must be between 1 and 30000");
    }
    data.max_train_examples = config.get<std::int64_t>("max_train_examples", 0);
    if (data.max_train_examples < 0)
      throw_config_error(config, "max_train_examples", "must not be negative");
    data.min_examples = config.get<std::int64_t>("min_client_examples", data.min_examples);
    if (data.min_examples < 1)
      throw_config_error(config, "min_client_examples", "must be at least 1");
    data.eval_examples = config.get<std::int64_t>("eval_examples", 0);
    if (data.eval_examples < 0) throw_config_error(config, "eval_examples", "must not be negative");
    const std::int64_t eval_batch_size = config.get<std::int64_t>("eval_batch_size", 1000);
    if (eval_batch_size < 1) throw_config_error(config, "eval_batch_size", "must be positive");

    const auto names = mlp::layer_names(base.hidden.size());
    const auto targets = config.get<std::vector<std::string>>("targets", names);
    for (const std::string& target : targets) {
      if (std::find(names.begin(), names.end(), target) == names.end()) {
        throw_config_error(config, "targets",
                           "names an unknown layer '" + target + "' (layers: fc1..fc" +
                               std::to_string(base.hidden.size()) + ", head)");
      }
    }
    if (targets.empty()) throw_config_error(config, "targets", "must name at least one layer");

    auto base_model = mlp::load_or_pretrain_base(base, data);
    return std::make_unique<MlpBackend>(std::move(base_model), targets,
                                        mlp::load_role_data(data, context), eval_batch_size);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("mlp", "0.1.0", MlpFactory)
