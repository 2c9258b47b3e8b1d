// The files `lorafed new` writes. Each source is a working plugin, built
// against the installed SDK by the test suite (scripts/test-install.sh).
#include "cli/plugin_templates.hpp"

namespace lorafed::cli::templates {

std::string_view cmake_lists() {
  return R"TEMPLATE(cmake_minimum_required(VERSION 3.25)
project(lorafed_@KIND@_@NAME@ LANGUAGES CXX)

# The installed lorafed SDK: lorafed::sdk and lorafed_add_plugin().
find_package(lorafed REQUIRED)

# Builds build/plugins/lorafed-@KIND@-@NAME@.so: hidden visibility, C++20,
# linked against the SDK; `cmake --install` puts it where lorafed looks.
lorafed_add_plugin(@NAME@ KIND @KIND@ SOURCES @NAME@.cpp)
)TEMPLATE";
}

std::string_view readme() {
  return R"TEMPLATE(# @KIND@ plugin `@NAME@`

A lorafed @KIND@ plugin, scaffolded by `lorafed new @KIND@ @NAME@`. It works
as written; change `@NAME@.cpp` (docs/writing-a-strategy.md in lorafed).

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=<lorafed prefix> && cmake --build build   # build
LORAFED_PLUGIN_PATH=build/plugins lorafed plugins                                 # list it
LORAFED_PLUGIN_PATH=build/plugins lorafed simulate @NAME@.toml                    # run it
```

`@NAME@.toml` is a two-round federation that uses this plugin.
)TEMPLATE";
}

std::string_view federation_config() {
  return R"TEMPLATE(# A small federation that runs the @KIND@ plugin `@NAME@`:
#   LORAFED_PLUGIN_PATH=build/plugins lorafed simulate @NAME@.toml
[federation]
rounds = 2
num_clients = 4
seed = 1
output_dir = "runs/@NAME@"

[lora]
rank = 4
alpha = 8

[train]
learning_rate = 0.01
momentum = 0.9

[simulation]
threads = 2

[strategy]
name = "@STRATEGY@"

[model]
name = "@MODEL@"

[transport]
name = "@TRANSPORT@"
)TEMPLATE";
}

std::string_view strategy_source() {
  return R"TEMPLATE(// Strategy `@NAME@`. As scaffolded it is FedAvg for LoRA: every client gets
// the same adapter, and the server averages A and B weighted by examples.
// Change configure_fit / aggregate_fit to make it yours.
#include <ATen/ATen.h>

#include <lorafed/averaging.hpp>
#include <lorafed/plugin.hpp>
#include <lorafed/weighting.hpp>

namespace {

using namespace lorafed;

class AveragingStrategy final : public Strategy {
 public:
  explicit AveragingStrategy(ExampleWeighting weighting) : weighting_(weighting) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  // Round r: one instruction per sampled client (its adapter and config).
  // Here every client gets the same global adapter, LoRA-initialised at
  // first; write the loop yourself to send each client something else.
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    return instruct_with_global_adapter(global_, clients, context_, "@NAME@");
  }

  // Results arrive sorted by client id; failures are the clients that did not return.
  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure> failures) override {
    global_ = average_adapters(results, example_weights(results, weighting_));
    return {{"failures", static_cast<double>(failures.size())}};
  }

  // What the server evaluates: the global change per target layer.
  NamedTensors global_delta() const override {
    return global_.layers.empty() ? NamedTensors{} : global_.dense_delta();
  }

  // Checkpoints: everything needed to resume, as named tensors.
  NamedTensors state() const override { return to_named_tensors(global_); }
  void load_state(const NamedTensors& state) override {
    global_ = adapter_from_named_tensors(state, context_.alpha);
  }

 private:
  ExampleWeighting weighting_;
  StrategyContext context_;
  Adapter global_;
};

class AveragingFactory final : public StrategyFactory {
 public:
  // Both halves read the [strategy] table; unknown keys are errors.
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<AveragingStrategy>(read_example_weighting(config));
  }
  // The client half: plain LoRA training (derive from it to change it).
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    read_example_weighting(config);
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("@NAME@", "0.1.0", AveragingFactory)
)TEMPLATE";
}

std::string_view model_source() {
  return R"TEMPLATE(// Model `@NAME@`. As scaffolded: a linear classifier W0 x on synthetic
// Gaussian clusters (16 features, 4 classes), LoRA on its one layer. Replace
// the data and the network with yours; keep the ModelBackend contract.
#include <ATen/ATen.h>

#include <cmath>
#include <lorafed/classifier_training.hpp>
#include <lorafed/error.hpp>
#include <lorafed/plugin.hpp>
#include <lorafed/seed.hpp>

namespace {

using namespace lorafed;

constexpr std::int64_t kFeatures = 16;
constexpr std::int64_t kClasses = 4;
constexpr const char* kLayer = "linear";

// Clusters around fixed class centres; `seed` picks the examples.
data::Examples clusters(std::int64_t count, std::uint64_t seed) {
  at::Generator centres_generator = at::make_generator<at::CPUGeneratorImpl>(1234);
  const at::Tensor centres = at::randn({kClasses, kFeatures}, centres_generator);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor labels = at::randint(kClasses, {count}, generator, at::kLong);
  const at::Tensor inputs =
      centres.index_select(0, labels) + at::randn({count, kFeatures}, generator) * 1.5;
  return {inputs, labels};
}

class LinearModel final : public ModelBackend {
 public:
  explicit LinearModel(const ModelContext& context) {
    // The "base": the same weights everywhere (a pretrained model in practice).
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
    base_ = at::randn({kClasses, kFeatures}, generator) * 0.1;
    const std::uint64_t index = static_cast<std::uint64_t>(context.client_index + 1);
    if (context.role == ModelContext::Role::kClient)
      train_ = clusters(256, derive_seed(context.seed, {index, 1}));
    test_ = clusters(256, derive_seed(context.seed, {index, 2}));
  }

  ModelSpec spec() const override {
    ModelSpec spec;
    spec.model_id = "@NAME@";
    spec.targets = {{kLayer, kFeatures, kClasses}};
    return spec;
  }
  std::int64_t num_train_examples() const override {
    return train_.labels.defined() ? train_.labels.size(0) : 0;
  }

  void install_adapter(const Adapter& adapter) override { adapter_ = adapter.clone(); }
  Adapter adapter() const override { return adapter_.clone(); }
  void install_merged_delta(const NamedTensors& delta) override {
    adapter_ = Adapter{};
    const auto found = delta.find(kLayer);
    delta_ = found == delta.end() ? at::Tensor() : found->second.clone();
  }
  void merge_adapter(const Adapter& adapter) override {
    base_ = base_ + adapter.dense_delta().at(kLayer);
  }

  TrainReport train(ParameterGroup group, const TrainOptions& options,
                    std::uint64_t seed) override {
    if (group != ParameterGroup::kAdapter || adapter_.layers.empty())
      throw Error("@NAME@: only an installed adapter can be trained");
    // Named as the SDK names LoRA factors, so that training hooks find them.
    return train_classifier([this](const at::Tensor& x) { return forward(x); },
                            to_named_tensors(adapter_), train_, options, seed);
  }

  EvalReport evaluate() override {
    return evaluate_classifier([this](const at::Tensor& x) { return forward(x); }, test_);
  }

 private:
  // (W0 + ΔW + s·B·A) x
  at::Tensor forward(const at::Tensor& x) const {
    at::Tensor weight = delta_.defined() ? base_ + delta_ : base_;
    at::Tensor logits = at::linear(x, weight);
    if (!adapter_.layers.empty()) {
      const LoraFactors& factors = adapter_.layers.at(kLayer);
      logits = logits + adapter_.scale() * at::linear(at::linear(x, factors.a), factors.b);
    }
    return logits;
  }

  at::Tensor base_;
  at::Tensor delta_;
  Adapter adapter_;
  data::Examples train_;
  data::Examples test_;
};

class LinearModelFactory final : public ModelFactory {
 public:
  // `config` is the [model] table: read your keys with config.get<T>(key, default).
  std::unique_ptr<ModelBackend> create(const ConfigTable&,
                                       const ModelContext& context) const override {
    return std::make_unique<LinearModel>(context);
  }
};

}  // namespace

LORAFED_MODEL_PLUGIN("@NAME@", "0.1.0", LinearModelFactory)
)TEMPLATE";
}

std::string_view transport_source() {
  return R"TEMPLATE(// Transport `@NAME@`. As scaffolded: in-process mailboxes (one process,
// as `lorafed simulate` runs), frames passed by shared ownership, never
// copied. Replace bind/connect and the channels with your network.
#include <condition_variable>
#include <deque>
#include <lorafed/error.hpp>
#include <lorafed/plugin.hpp>
#include <map>
#include <mutex>

namespace {

using lorafed::Message;

class Mailbox {
 public:
  void push(Message message) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(message));
    }
    ready_.notify_one();
  }
  std::optional<Message> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) return std::nullopt;
    Message message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Message> queue_;
};

// One bound endpoint: the server's mailbox and one per connected peer.
struct Endpoint {
  Mailbox server;
  std::mutex peers_mutex;
  std::map<std::string, std::shared_ptr<Mailbox>> peers;
};

std::mutex endpoints_mutex;
std::map<std::string, std::shared_ptr<Endpoint>> endpoints;

class ServerChannel final : public lorafed::Channel {
 public:
  ServerChannel(std::string name, std::shared_ptr<Endpoint> endpoint)
      : name_(std::move(name)), endpoint_(std::move(endpoint)) {}
  ~ServerChannel() override { close(); }
  void send(Message message) override {
    std::shared_ptr<Mailbox> peer;
    {
      std::lock_guard lock(endpoint_->peers_mutex);
      if (auto found = endpoint_->peers.find(message.peer); found != endpoint_->peers.end())
        peer = found->second;
    }
    if (peer) peer->push(std::move(message));  // an unknown peer's message is dropped
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    return endpoint_->server.pop(timeout);
  }
  void close() override {
    std::lock_guard lock(endpoints_mutex);
    endpoints.erase(name_);
  }

 private:
  std::string name_;
  std::shared_ptr<Endpoint> endpoint_;
};

class ClientChannel final : public lorafed::Channel {
 public:
  ClientChannel(std::string identity, std::shared_ptr<Endpoint> endpoint,
                std::shared_ptr<Mailbox> inbox)
      : identity_(std::move(identity)), endpoint_(std::move(endpoint)), inbox_(std::move(inbox)) {}
  void send(Message message) override {
    message.peer = identity_;  // the server sees who sent it
    endpoint_->server.push(std::move(message));
  }
  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    return inbox_->pop(timeout);
  }
  void close() override {}

 private:
  std::string identity_;
  std::shared_ptr<Endpoint> endpoint_;
  std::shared_ptr<Mailbox> inbox_;
};

class MailboxTransport final : public lorafed::Transport {
 public:
  // `peers` says who may connect (clients, or a broker's one server): a
  // transport that authenticates checks the keys configured for that side.
  std::unique_ptr<lorafed::Channel> bind(const std::string& name, lorafed::Peers) override {
    std::lock_guard lock(endpoints_mutex);
    auto& endpoint = endpoints[name];
    if (endpoint) throw lorafed::Error("@NAME@: '" + name + "' is already bound");
    endpoint = std::make_shared<Endpoint>();
    return std::make_unique<ServerChannel>(name, endpoint);
  }
  std::unique_ptr<lorafed::Channel> connect(const std::string& name,
                                            const std::string& identity) override {
    std::shared_ptr<Endpoint> endpoint;
    {
      std::lock_guard lock(endpoints_mutex);
      if (auto found = endpoints.find(name); found != endpoints.end()) endpoint = found->second;
    }
    if (!endpoint) throw lorafed::Error("@NAME@: nothing is bound at '" + name + "'");
    auto inbox = std::make_shared<Mailbox>();
    std::lock_guard lock(endpoint->peers_mutex);
    endpoint->peers[identity] = inbox;
    return std::make_unique<ClientChannel>(identity, endpoint, inbox);
  }
  // Mailboxes in one process: `lorafed simulate` only.
  bool crosses_processes() const override { return false; }
};

class MailboxFactory final : public lorafed::TransportFactory {
 public:
  // `config` is the [transport] table.
  std::unique_ptr<lorafed::Transport> create(const lorafed::ConfigTable&) const override {
    return std::make_unique<MailboxTransport>();
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("@NAME@", "0.1.0", MailboxFactory)
)TEMPLATE";
}

}  // namespace lorafed::cli::templates
