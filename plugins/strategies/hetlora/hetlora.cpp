// HetLoRA: zero-padded factors averaged with weights ∝ ||s_i B_i A_i||_F;
// clients get the leading r_i ranks, and may prune their own rank. Factors
// are rescaled between a client's scale and the global one, so each client's
// update counts as it trained it (docs/algorithms.md §HetLoRA, "Scale").
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "lorafed/error.hpp"
#include "lorafed/lora_math.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/seed.hpp"

namespace {

using namespace lorafed;

at::Tensor pad_rows(const at::Tensor& a, std::int64_t rows) {
  return a.size(0) == rows ? a
                           : at::cat({a, at::zeros({rows - a.size(0), a.size(1)}, a.options())}, 0);
}
at::Tensor pad_columns(const at::Tensor& b, std::int64_t columns) {
  return b.size(1) == columns
             ? b
             : at::cat({b, at::zeros({b.size(0), columns - b.size(1)}, b.options())}, 1);
}

class HetLora final : public Strategy {
 public:
  HetLora(bool evaluate_clients, bool rescale)
      : evaluate_clients_(evaluate_clients), rescale_(rescale) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
    global_.alpha = context.alpha;
  }

  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override {
    std::int64_t max_rank = 0;
    for (const ClientInfo& client : clients) max_rank = std::max(max_rank, client.rank);
    grow_to(max_rank, round);
    std::vector<FitInstruction> instructions;
    for (const ClientInfo& client : clients)
      instructions.push_back(FitInstruction{client.id, leading(client.rank), {}});
    return instructions;
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    if (results.empty()) return {};
    const std::int64_t padded_rank = global_.rank();
    Adapter next;
    next.alpha = global_.alpha;
    for (const TargetLayer& layer : context_.spec.targets) {
      // Weights ∝ ||s_i B_i A_i||_F of this layer, normalised over the results.
      std::vector<double> norms;
      for (const FitResult& result : results) {
        const LoraFactors& f = result.adapter.layers.at(layer.name);
        norms.push_back(result.adapter.scale() * at::matmul(f.b, f.a).norm().item<double>());
      }
      const std::vector<double> p = normalise_weights(norms);
      at::Tensor a = at::zeros_like(global_.layers.at(layer.name).a);
      at::Tensor b = at::zeros_like(global_.layers.at(layer.name).b);
      for (std::size_t i = 0; i < results.size(); ++i) {
        const LoraFactors& f = results[i].adapter.layers.at(layer.name);
        // Rescaled: (alpha / R) B~ A~ = s_i B_i' A_i' with B~, A~ = sqrt(R / r_i) B_i', A_i'.
        const double c = factor_scale(padded_rank, results[i].adapter.rank());
        a.add_(pad_rows(f.a, padded_rank), p[i] * c);
        b.add_(pad_columns(f.b, padded_rank), p[i] * c);
      }
      next.layers.emplace(layer.name, LoraFactors{std::move(a), std::move(b)});
    }
    global_ = std::move(next);
    return {};
  }

  // Each client's model at its own rank: the leading r_i ranks of the global factors.
  std::vector<EvaluateInstruction> configure_evaluate(
      int round, std::span<const ClientInfo> clients) override {
    if (!evaluate_clients_) return {};
    std::int64_t max_rank = 0;
    for (const ClientInfo& client : clients) max_rank = std::max(max_rank, client.rank);
    grow_to(max_rank, round + 1);
    std::vector<EvaluateInstruction> instructions;
    for (const ClientInfo& client : clients)
      instructions.push_back({client.id, leading(client.rank), {}});
    return instructions;
  }

  // The global model: the padded factors at the largest rank, s = alpha / r_max.
  NamedTensors global_delta() const override {
    return global_.layers.empty() ? NamedTensors{} : global_.dense_delta();
  }

  NamedTensors state() const override { return to_named_tensors(global_); }
  void load_state(const NamedTensors& state) override {
    global_ = adapter_from_named_tensors(state, context_.alpha);
  }

 private:
  // What multiplies both factors when they move from scale alpha / `from`
  // to alpha / `to` with the product's delta kept: sqrt(to / from); 1 under
  // the literal rule (rescale = false).
  double factor_scale(std::int64_t to, std::int64_t from) const {
    return rescale_ ? std::sqrt(static_cast<double>(to) / static_cast<double>(from)) : 1.0;
  }

  // Pads the global factors to `rank` with fresh LoRA directions (A rows
  // initialised, B columns zero), so a client of a new, larger rank can join.
  // Rescaled, the existing factors keep their delta at the new scale.
  void grow_to(std::int64_t rank, int round) {
    const std::int64_t current = global_.rank();
    if (current >= rank) return;
    const Adapter fresh = init_adapter(
        context_.spec, rank, context_.alpha,
        derive_seed(context_.seed, {0x484554 /* HET */, static_cast<std::uint64_t>(round)}));
    if (current == 0) {
      global_ = fresh;
      return;
    }
    const double c = factor_scale(rank, current);
    for (auto& [name, factors] : global_.layers) {
      const LoraFactors& extra = fresh.layers.at(name);
      factors.a = at::cat({factors.a * c, extra.a.narrow(0, current, rank - current)}, 0);
      factors.b = pad_columns(factors.b * c, rank);
    }
  }

  // The leading `rank` ranks of the global factors, at the client's scale
  // alpha / rank: rescaled by sqrt(rank / R), so the client's model is the
  // global model's leading ranks.
  Adapter leading(std::int64_t rank) const {
    Adapter adapter;
    adapter.alpha = global_.alpha;
    const double c = factor_scale(rank, global_.rank());
    for (const auto& [name, factors] : global_.layers) {
      adapter.layers[name] = LoraFactors{(factors.a.narrow(0, 0, rank) * c).contiguous(),
                                         (factors.b.narrow(1, 0, rank) * c).contiguous()};
    }
    return adapter;
  }

  bool evaluate_clients_;
  bool rescale_;
  StrategyContext context_;
  Adapter global_;  // padded to the largest rank seen
};

// Client side: plain LoRA training, plus optional rank self-pruning. After
// training, if the tail beyond ⌈γ r⌉ carries less than `pruning_threshold` of
// the adapter's norm, the client drops it for good: the tail is zeroed (and
// zero factors get no gradient, so it stays zero) and sent back as zeros.
class HetLoraProcedure final : public LoraTrainingProcedure {
 public:
  HetLoraProcedure(bool self_pruning, double gamma, double threshold)
      : self_pruning_(self_pruning), gamma_(gamma), threshold_(threshold) {}

  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    if (!self_pruning_) return LoraTrainingProcedure::fit(model, instruction, context);
    const std::int64_t sent_rank = instruction.adapter.rank();
    active_rank_ = active_rank_ == 0 ? sent_rank : std::min(active_rank_, sent_rank);
    FitInstruction pruned = instruction;
    pruned.adapter = zero_tail(instruction.adapter, active_rank_);
    FitOutcome outcome = LoraTrainingProcedure::fit(model, pruned, context);
    const auto keep =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(gamma_ * active_rank_)));
    if (keep < active_rank_ && tail_share(outcome.adapter, keep) < threshold_) {
      active_rank_ = keep;
      outcome.adapter = zero_tail(outcome.adapter, active_rank_);
    }
    outcome.metrics["active_rank"] = static_cast<double>(active_rank_);
    return outcome;
  }

 private:
  static Adapter zero_tail(const Adapter& adapter, std::int64_t keep) {
    Adapter result = adapter.clone();
    for (auto& [name, factors] : result.layers) {
      const std::int64_t rank = factors.a.size(0);
      if (keep >= rank) continue;
      factors.a.narrow(0, keep, rank - keep).zero_();
      factors.b.narrow(1, keep, rank - keep).zero_();
    }
    return result;
  }

  // ||tail product||_F / ||full product||_F over all layers.
  static double tail_share(const Adapter& adapter, std::int64_t keep) {
    double tail = 0, full = 0;
    for (const auto& [name, f] : adapter.layers) {
      const std::int64_t rank = f.a.size(0);
      full += at::matmul(f.b, f.a).square().sum().item<double>();
      tail += at::matmul(f.b.narrow(1, keep, rank - keep), f.a.narrow(0, keep, rank - keep))
                  .square()
                  .sum()
                  .item<double>();
    }
    return full > 0 ? std::sqrt(tail / full) : 0.0;
  }

  bool self_pruning_;
  double gamma_;
  double threshold_;
  std::int64_t active_rank_ = 0;
};

class HetLoraFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    read_client_keys(config);
    return std::make_unique<HetLora>(config.get<bool>("evaluate_clients", false),
                                     config.get<bool>("rescale", true));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    config.mark_read("evaluate_clients");
    config.mark_read("rescale");
    const auto [pruning, gamma, threshold] = read_client_keys(config);
    return std::make_unique<HetLoraProcedure>(pruning, gamma, threshold);
  }

 private:
  static std::tuple<bool, double, double> read_client_keys(const ConfigTable& config) {
    const bool pruning = config.get<bool>("self_pruning", false);
    const double gamma = config.get<double>("pruning_gamma", 0.9);
    if (!(gamma > 0 && gamma < 1)) throw_config_error(config, "pruning_gamma", "must be in (0, 1)");
    const double threshold = config.get<double>("pruning_threshold", 0.05);
    if (!(threshold > 0 && threshold < 1))
      throw_config_error(config, "pruning_threshold", "must be in (0, 1)");
    return {pruning, gamma, threshold};
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("hetlora", "0.1.0", HetLoraFactory)
