// FedProx for LoRA (docs/algorithms.md §FedProx): FedAvg's server, clients
// that add μ/2 ‖θ − θ_global‖² over the adapter's factors to their loss.
#include "../fedavg/fedavg_strategy.hpp"
#include "lorafed/plugin.hpp"
#include "proximal_procedure.hpp"

namespace {

using namespace lorafed;

constexpr double kDefaultMu = 0.01;

class FedProxFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    fedprox::read_mu(config, "mu", kDefaultMu);
    return fedavg::make_strategy(config, "fedprox");
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(
      const ConfigTable& config) const override {
    // The proximal procedure even at μ = 0, whose term then adds exactly 0.
    return std::make_unique<fedprox::ProximalProcedure>(fedprox::read_mu(config, "mu", kDefaultMu));
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedprox", "0.1.0", FedProxFactory)
