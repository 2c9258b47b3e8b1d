// FedAvg / FedIT: average A and B separately (docs/algorithms.md §FedAvg).
#include "fedavg_strategy.hpp"
#include "lorafed/plugin.hpp"

namespace {

using namespace lorafed;

class FedAvgFactory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable& config) const override {
    return fedavg::make_strategy(config, "fedavg");
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("fedavg", "0.1.0", FedAvgFactory)
