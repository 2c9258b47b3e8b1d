// SCAFFOLD for LoRA, option II (docs/algorithms.md §SCAFFOLD): FedAvg's
// global adapter with a server control variate c, and on every client a
// control variate c_i, both in the adapter's layout; every local step's
// gradient is corrected by c − c_i.
#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "../fedavg/fedavg_strategy.hpp"
#include "lorafed/error.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/training_hook.hpp"

namespace {

using namespace lorafed;

// Zeros in the layout of `adapter`.
Adapter zeros_like(const Adapter& adapter) {
  Adapter zeros;
  zeros.alpha = adapter.alpha;
  for (const auto& [name, factors] : adapter.layers) {
    zeros.layers[name] = {at::zeros_like(factors.a), at::zeros_like(factors.b)};
  }
  return zeros;
}

// The server: FedAvg's, plus c ← c + (1/N) Σ_i Δc_i over the clients that
// returned (N: the federation's clients).
class Scaffold final : public Strategy {
 public:
  explicit Scaffold(std::unique_ptr<Strategy> fedavg) : fedavg_(std::move(fedavg)) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    control_ = Adapter{};
    fedavg_->initialize(context);
  }

  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions = fedavg_->configure_fit(round, clients);
    if (instructions.empty()) return instructions;
    if (control_.layers.empty()) control_ = zeros_like(instructions.front().adapter);
    for (FitInstruction& instruction : instructions) instruction.control = control_;
    return instructions;
  }

  Metrics aggregate_fit(int round, std::span<const FitResult> results,
                        std::span<const Failure> failures) override {
    for (const FitResult& result : results) {
      if (result.control.layers.empty()) {
        throw Error("scaffold: " + result.client_id +
                    " returned no change of its control variate (is it running the scaffold "
                    "procedure?)");
      }
    }
    Metrics metrics = fedavg_->aggregate_fit(round, results, failures);
    if (results.empty()) return metrics;
    const double n =
        static_cast<double>(context_.num_clients > 0 ? context_.num_clients
                                                     : static_cast<std::int64_t>(results.size()));
    // A new adapter: instructions already sent may share the old tensors.
    Adapter next = control_;
    for (auto& [name, factors] : next.layers) {
      at::Tensor a = factors.a.clone(), b = factors.b.clone();
      for (const FitResult& result : results) {
        a += result.control.layers.at(name).a / n;
        b += result.control.layers.at(name).b / n;
      }
      factors = {a, b};
    }
    control_ = std::move(next);
    double norm = 0;
    for (const auto& [name, factors] : control_.layers) {
      norm += factors.a.square().sum().item<double>() + factors.b.square().sum().item<double>();
    }
    metrics["control_norm"] = std::sqrt(norm);
    return metrics;
  }

  std::vector<EvaluateInstruction> configure_evaluate(
      int round, std::span<const ClientInfo> clients) override {
    return fedavg_->configure_evaluate(round, clients);
  }
  Metrics aggregate_evaluate(int round, std::span<const EvaluateResult> results,
                             std::span<const Failure> failures) override {
    return fedavg_->aggregate_evaluate(round, results, failures);
  }
  NamedTensors global_delta() const override { return fedavg_->global_delta(); }

  // FedAvg's state, and c under "control.".
  NamedTensors state() const override {
    NamedTensors state = fedavg_->state();
    for (const auto& [name, tensor] : to_named_tensors(control_)) {
      state.emplace(kControl + name, tensor);
    }
    return state;
  }
  void load_state(const NamedTensors& state) override {
    NamedTensors global, control;
    for (const auto& [name, tensor] : state) {
      if (name.starts_with(kControl)) {
        control.emplace(name.substr(kControl.size()), tensor);
      } else {
        global.emplace(name, tensor);
      }
    }
    fedavg_->load_state(global);
    control_ = control.empty() ? Adapter{} : adapter_from_named_tensors(control, context_.alpha);
  }

 private:
  static inline const std::string kControl = "control.";
  std::unique_ptr<Strategy> fedavg_;
  StrategyContext context_;
  Adapter control_;  // c
};

// Adds `offset` (c − c_i) to each named tensor's gradient before every step.
class GradientOffset final : public TrainingHook {
 public:
  explicit GradientOffset(NamedTensors offset) : offset_(std::move(offset)) {}
  void before_step(const NamedTensors& trainable) override {
    at::NoGradGuard no_grad;
    for (const auto& [name, value] : offset_) {
      const auto found = trainable.find(name);
      if (found == trainable.end()) {
        throw Error("scaffold: '" + name + "' is not among the tensors being trained");
      }
      at::Tensor& grad = found->second.mutable_grad();
      if (!grad.defined()) grad = at::zeros_like(found->second);
      grad.add_(value);
    }
  }

 private:
  NamedTensors offset_;
};

// One per client: it keeps c_i (zero until the client first trains).
class ScaffoldProcedure final : public LoraTrainingProcedure {
 public:
  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    if (instruction.control.layers.empty()) {
      throw Error(
          "scaffold: the instruction carries no control variate (is the server running "
          "scaffold?)");
    }
    if (context.train.optimizer != "sgd") {
      throw Error(
          "scaffold: [train] optimizer must be \"sgd\" (its control variates estimate "
          "the mean gradient from the steps taken), got \"" +
          context.train.optimizer + "\"");
    }
    const Adapter own = own_.value_or(zeros_like(instruction.adapter));
    NamedTensors offset = to_named_tensors(instruction.control);  // c − c_i
    for (auto& [name, tensor] : to_named_tensors(own)) offset[name] = offset.at(name) - tensor;
    ClientContext corrected = context;
    corrected.train.hook = std::make_shared<GradientOffset>(std::move(offset));
    FitOutcome outcome = LoraTrainingProcedure::fit(model, instruction, corrected);

    // Option II: c_i⁺ = c_i − c + (x − y) / (K η); the server gets c_i⁺ − c_i.
    // With momentum β a step moves η/(1 − β) times the gradient once the
    // momentum has built up, so η becomes η/(1 − β): without it c_i came out
    // 10 times too large at β = 0.9 and training diverged in round 2.
    const double steps = outcome.metrics.at("steps");
    const double step_size = context.train.learning_rate / (1.0 - context.train.momentum);
    Adapter change = zeros_like(instruction.adapter);
    if (steps > 0) {
      const double scale = 1.0 / (steps * step_size);
      for (auto& [name, factors] : change.layers) {
        const LoraFactors& x = instruction.adapter.layers.at(name);
        const LoraFactors& y = outcome.adapter.layers.at(name);
        const LoraFactors& c = instruction.control.layers.at(name);
        factors = {(x.a - y.a) * scale - c.a, (x.b - y.b) * scale - c.b};
      }
    }
    Adapter next = own;
    for (auto& [name, factors] : next.layers) {
      factors = {factors.a + change.layers.at(name).a, factors.b + change.layers.at(name).b};
    }
    own_ = std::move(next);
    outcome.control = std::move(change);
    return outcome;
  }

  // c_i, for a client whose procedure lives only while it works.
  NamedTensors client_state() const override {
    return own_ ? adapter_state(*own_) : NamedTensors{};
  }
  void load_client_state(const NamedTensors& state) override {
    own_.reset();
    if (!state.empty()) own_ = adapter_from_state(state);
  }

 private:
  std::optional<Adapter> own_;  // c_i
};

class ScaffoldFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<Scaffold>(fedavg::make_strategy(config, "scaffold"));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<ScaffoldProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("scaffold", "0.1.0", ScaffoldFactory)
