// A strategy plugin whose factory throws while loading: the registry must
// report it by name instead of letting the exception escape.
#include <stdexcept>

#include "lorafed/plugin.hpp"

namespace {
class ThrowingFactory final : public lorafed::StrategyFactory {
 public:
  ThrowingFactory() { throw std::runtime_error("cannot initialise: no licence"); }
  std::unique_ptr<lorafed::Strategy> create_strategy(const lorafed::ConfigTable&) const override {
    return nullptr;
  }
  std::unique_ptr<lorafed::ClientProcedure> create_client_procedure(
      const lorafed::ConfigTable&) const override {
    return nullptr;
  }
};
}  // namespace

LORAFED_STRATEGY_PLUGIN("throwing", "0.0.1", ThrowingFactory)
