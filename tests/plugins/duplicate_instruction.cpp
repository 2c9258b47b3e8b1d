// A strategy plugin with a bug: it instructs its first client twice a round.
// The server must stop with an error naming the strategy and the client,
// not send one instruction and check the reply against the other.
#include <lorafed/averaging.hpp>
#include <lorafed/plugin.hpp>

namespace {

using namespace lorafed;

class DuplicateInstruction final : public Strategy {
 public:
  void initialize(const StrategyContext& context) override { context_ = context; }
  std::vector<FitInstruction> configure_fit(int, std::span<const ClientInfo> clients) override {
    std::vector<FitInstruction> instructions =
        instruct_with_global_adapter(global_, clients, context_, "duplicate");
    if (!instructions.empty()) instructions.push_back(instructions.front());
    return instructions;
  }
  Metrics aggregate_fit(int, std::span<const FitResult>, std::span<const Failure>) override {
    return {};
  }
  NamedTensors global_delta() const override { return {}; }
  NamedTensors state() const override { return {}; }
  void load_state(const NamedTensors&) override {}

 private:
  StrategyContext context_;
  Adapter global_;
};

class Factory final : public StrategyFactory {
 public:
  std::unique_ptr<Strategy> create_strategy(const ConfigTable&) const override {
    return std::make_unique<DuplicateInstruction>();
  }
  std::unique_ptr<ClientProcedure> create_client_procedure(const ConfigTable&) const override {
    return std::make_unique<LoraTrainingProcedure>();
  }
};

}  // namespace

LORAFED_STRATEGY_PLUGIN("duplicate", "0.0.1", Factory)
