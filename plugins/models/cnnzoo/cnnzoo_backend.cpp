// The `cnnzoo` model backend: five heterogeneous CNNs on Fashion-MNIST that
// share one homogeneous low-rank adapter (README.md, docs/algorithms.md
// §pFedLoRA).
#include <ATen/ATen.h>

#include <algorithm>

#include "lorafed/classifier_training.hpp"
#include "lorafed/data/fashion_mnist.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/seed.hpp"
#include "zoo_data.hpp"
#include "zoo_net.hpp"

namespace {

using namespace lorafed;

ModelSpec zoo_spec() {
  ModelSpec spec;
  spec.model_id = "cnnzoo";
  spec.targets = {{cnnzoo::kAdapterLayer, cnnzoo::kRepresentationWidth, cnnzoo::kClasses}};
  spec.shared_parameters = {{"fc3.weight", {cnnzoo::kClasses, cnnzoo::kRepresentationWidth}},
                            {"fc3.bias", {cnnzoo::kClasses}}};
  return spec;
}

class CnnZooBackend final : public ModelBackend {
 public:
  CnnZooBackend(const cnnzoo::Architecture& architecture, std::uint64_t init_seed,
                std::optional<cnnzoo::ClientData> data, std::int64_t eval_batch_size)
      : network_(architecture, init_seed),
        data_(std::move(data)),
        eval_batch_size_(eval_batch_size) {}

  ModelSpec spec() const override { return zoo_spec(); }
  std::int64_t num_train_examples() const override { return data_ ? data_->train.size() : 0; }

  void install_adapter(const Adapter& adapter) override { network_.install_adapter(adapter); }
  Adapter adapter() const override { return network_.adapter(); }

  void install_merged_delta(const NamedTensors& delta) override {
    if (!delta.empty()) throw Error(no_global_model());
  }
  void merge_adapter(const Adapter&) override {
    throw Error("cnnzoo model: merging an adapter into the local model is not supported");
  }

  TrainReport train(ParameterGroup group, const TrainOptions& options,
                    std::uint64_t seed) override {
    if (!data_) throw Error("cnnzoo model: the server has no training data");
    NamedTensors parameters;
    if (group != ParameterGroup::kLocal) {
      parameters = network_.adapter_tensors();
      if (parameters.empty()) throw Error("cnnzoo model: no adapter installed to train");
    }
    if (group != ParameterGroup::kAdapter) parameters.merge(network_.local_tensors());
    TrainReport report =
        train_classifier([this](const at::Tensor& x) { return network_.forward(x); }, parameters,
                         data_->train, options, seed);
    report.flops =
        network_.training_flops_per_example(group) * static_cast<double>(report.examples_seen);
    return report;
  }

  EvalReport evaluate() override {
    if (!data_) throw Error(no_global_model());
    return evaluate_classifier([this](const at::Tensor& x) { return network_.forward(x); },
                               data_->test, eval_batch_size_);
  }

  NamedTensors local_parameters() const override {
    NamedTensors copies;
    for (const auto& [name, tensor] : network_.local())
      copies.emplace(name, tensor.detach().clone());
    return copies;
  }
  void load_local_parameters(const NamedTensors& parameters) override {
    network_.load_local(parameters);
  }

 private:
  static std::string no_global_model() {
    return "cnnzoo model: clients' models differ, so there is no global model for the server to "
           "evaluate; use a personalised strategy (pfedlora, lgfedavg, standalone)";
  }

  cnnzoo::ZooNet network_;
  std::optional<cnnzoo::ClientData> data_;  // none on the server
  std::int64_t eval_batch_size_;
};

class CnnZooFactory final : public ModelFactory {
 public:
  std::unique_ptr<ModelBackend> create(const ConfigTable& config,
                                       const ModelContext& context) const override {
    const auto zoo = config.get<std::vector<std::int64_t>>("zoo", {1, 2, 3, 4, 5});
    if (zoo.empty()) throw_config_error(config, "zoo", "must list at least one model (1..5)");
    for (std::int64_t id : zoo) {
      if (id < 1 || id > 5) throw_config_error(config, "zoo", "models are 1..5");
    }
    cnnzoo::DataOptions data;
    data.data_dir = config.get<std::string>("data_dir", data::kFashionMnistDir);
    data.partition = config.get<std::string>("partition", data.partition);
    if (data.partition != "classes" && data.partition != "dirichlet" && data.partition != "iid") {
      throw_config_error(
          config, "partition",
          "must be \"classes\", \"dirichlet\" or \"iid\", got \"" + data.partition + "\"");
    }
    data.classes_per_client = config.get<std::int64_t>("classes_per_client", 2);
    if (data.classes_per_client < 1 || data.classes_per_client > 10)
      throw_config_error(config, "classes_per_client", "must be between 1 and 10");
    data.dirichlet_alpha = config.get<double>("dirichlet_alpha", data.dirichlet_alpha);
    if (!(data.dirichlet_alpha > 0))
      throw_config_error(config, "dirichlet_alpha", "must be positive");
    data.max_train_examples =
        config.get<std::int64_t>("max_train_examples", data.max_train_examples);
    if (data.max_train_examples < 0)
      throw_config_error(config, "max_train_examples", "must not be negative");
    data.max_test_examples = config.get<std::int64_t>("max_test_examples", data.max_test_examples);
    if (data.max_test_examples < 0)
      throw_config_error(config, "max_test_examples", "must not be negative");
    const std::int64_t eval_batch_size = config.get<std::int64_t>("eval_batch_size", 500);
    if (eval_batch_size < 1) throw_config_error(config, "eval_batch_size", "must be positive");

    // Client k gets zoo[k mod |zoo|]; the server's instance only describes the spec.
    const bool client = context.role == ModelContext::Role::kClient;
    const std::int64_t index = client ? context.client_index : 0;
    const auto& architecture =
        cnnzoo::architecture(static_cast<int>(zoo[static_cast<std::size_t>(index) % zoo.size()]));
    std::optional<cnnzoo::ClientData> client_data;
    if (client) client_data = cnnzoo::load_client_data(data, context);
    return std::make_unique<CnnZooBackend>(
        architecture,
        derive_seed(context.seed, {0x494e4954 /* INIT */, static_cast<std::uint64_t>(index)}),
        std::move(client_data), eval_batch_size);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("cnnzoo", "0.1.0", CnnZooFactory)
