// FedProx for LoRA (docs/algorithms.md §FedProx): FedAvg's server, clients
// that add μ/2 ‖θ − θ_global‖² over the adapter's factors to their loss.
#include <cmath>

#include "../fedavg/fedavg_strategy.hpp"
#include "lorafed/plugin.hpp"
#include "lorafed/proximal_term.hpp"

namespace {

using namespace lorafed;

// μ from [strategy] mu (both halves are made wherever either is: the server
// checks the key too).
double read_mu(const ConfigTable& config) {
  const double mu = config.get<double>("mu", 0.01);
  if (!std::isfinite(mu) || mu < 0 || mu > 1e6) {
    throw_config_error(config, "mu", "must be in [0, 1e6], got " + std::to_string(mu));
  }
  return mu;
}

class ProximalProcedure final : public LoraTrainingProcedure {
 public:
  explicit ProximalProcedure(double mu) : mu_(mu) {}

  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    // The anchor is the global adapter as sent: what training starts from.
    ClientContext proximal = context;
    proximal.train.hook = proximal_term(mu_, to_named_tensors(instruction.adapter));
    return LoraTrainingProcedure::fit(model, instruction, proximal);
  }

 private:
  double mu_;
};

class FedProxFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    read_mu(config);
    return fedavg::make_strategy(config, "fedprox");
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    return std::make_unique<ProximalProcedure>(read_mu(config));
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedprox", "0.1.0", FedProxFactory)
