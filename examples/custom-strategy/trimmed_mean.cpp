// Strategy `trimmed_mean`: a robust aggregator for LoRA factors. For every
// coordinate of A and of B, the server drops the ⌊β·m⌋ largest and smallest
// values over the m clients that returned and averages the rest (Yin et al.
// 2018, coordinate-wise trimmed mean), so a few clients sending extreme
// factors cannot drag the global adapter far. Everyone trains one rank;
// the client half is plain LoRA training.
#include <ATen/ATen.h>

#include <cmath>
#include <lorafed/averaging.hpp>
#include <lorafed/error.hpp>
#include <lorafed/plugin.hpp>

namespace {

using namespace lorafed;

// Coordinate-wise mean of `stacked` (m × ...) after dropping `trim` values
// at each end of every coordinate.
at::Tensor trimmed_mean(const at::Tensor& stacked, std::int64_t trim) {
  const std::int64_t m = stacked.size(0);
  const at::Tensor sorted = std::get<0>(stacked.sort(0));
  return sorted.narrow(0, trim, m - 2 * trim).mean(0);
}

class TrimmedMean final : public Strategy {
 public:
  explicit TrimmedMean(double trim_fraction) : trim_fraction_(trim_fraction) {}

  void initialize(const StrategyContext& context) override {
    context_ = context;
    global_ = Adapter{};
  }

  // Every client gets the same global adapter (LoRA's initialisation at first).
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    return instruct_with_global_adapter(global_, clients, context_, "trimmed_mean");
  }

  Metrics aggregate_fit(int, std::span<const FitResult> results,
                        std::span<const Failure>) override {
    const auto m = static_cast<std::int64_t>(results.size());
    // Never trim everything: keep at least one value per coordinate.
    const std::int64_t trim =
        std::min(static_cast<std::int64_t>(std::floor(trim_fraction_ * static_cast<double>(m))),
                 (m - 1) / 2);
    Adapter next;
    next.alpha = global_.alpha;
    for (const auto& [name, current] : global_.layers) {
      std::vector<at::Tensor> a, b;
      for (const FitResult& result : results) {
        const LoraFactors& factors = result.adapter.layers.at(name);
        a.push_back(factors.a);
        b.push_back(factors.b);
      }
      next.layers.emplace(
          name, LoraFactors{trimmed_mean(at::stack(a), trim), trimmed_mean(at::stack(b), trim)});
    }
    global_ = std::move(next);
    return {{"trimmed_per_side", static_cast<double>(trim)}};
  }

  NamedTensors global_delta() const override {
    return global_.layers.empty() ? NamedTensors{} : global_.dense_delta();
  }
  NamedTensors state() const override { return to_named_tensors(global_); }
  void load_state(const NamedTensors& state) override {
    global_ = adapter_from_named_tensors(state, context_.alpha);
  }

 private:
  double trim_fraction_;
  StrategyContext context_;
  Adapter global_;
};

double read_trim_fraction(const ConfigTable& config) {
  const double fraction = config.get<double>("trim_fraction", 0.2);
  if (!(fraction >= 0 && fraction < 0.5))
    throw_config_error(config, "trim_fraction", "must be in [0, 0.5)");
  return fraction;
}

class TrimmedMeanFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return std::make_unique<TrimmedMean>(read_trim_fraction(config));
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    read_trim_fraction(config);
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("trimmed_mean", "1.0.0", TrimmedMeanFactory)
