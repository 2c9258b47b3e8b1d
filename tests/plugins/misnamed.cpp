// A valid strategy plugin in a file named for another one.
#include "lorafed/plugin.hpp"

namespace {
class Factory final : public lorafed::StrategyFactory {
 public:
  std::unique_ptr<lorafed::Strategy> create_strategy(const lorafed::ConfigTable&) const override {
    return nullptr;
  }
  std::unique_ptr<lorafed::ClientProcedure> create_client_procedure(
      const lorafed::ConfigTable&) const override {
    return nullptr;
  }
};
}  // namespace

LORAFED_STRATEGY_PLUGIN("somethingelse", "0.0.1", Factory)
