#pragma once

#include <string>

#include "lorafed/config.hpp"
#include "lorafed/export.hpp"
#include "lorafed/strategy.hpp"
#include "lorafed/truncated_global.hpp"

namespace lorafed {

// Base of strategies whose server keeps a dense global product per layer and
// sends each client the balanced factors of its truncation at the client's
// rank (FedHL's W_t, FlexLoRA's ΔW; docs/algorithms.md). A derived strategy
// writes aggregate_fit only, reading and replacing global().
class LORAFED_API TruncatingStrategy : public Strategy {
 public:
  struct Options {
    TruncatedGlobal::Options svd;
    bool evaluate_clients = false;  // every client evaluates its truncation of the new product
    std::string state_suffix;       // state tensors are "<layer><suffix>"
  };

  // Reads `svd` ("exact" or "randomized"), `svd_oversampling`,
  // `svd_power_iterations` and `evaluate_clients` from a [strategy] table.
  static Options read_options(const ConfigTable& config, std::string state_suffix);

  explicit TruncatingStrategy(Options options);
  ~TruncatingStrategy() override;

  void initialize(const StrategyContext& context) override;  // the product starts at 0
  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override;
  std::vector<EvaluateInstruction> configure_evaluate(int round,
                                                      std::span<const ClientInfo> clients) override;
  NamedTensors global_delta() const override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;

 protected:
  TruncatedGlobal& global() { return global_; }
  const TruncatedGlobal& global() const { return global_; }
  const StrategyContext& context() const { return context_; }
  bool evaluates_clients() const { return options_.evaluate_clients; }
  // ΔW_i = s·B_i'A_i' − s·B_i A_i per layer: how a client changed the
  // product it was sent (what differential privacy clips, docs/privacy.md).
  static NamedTensors product_change(const FitInstruction& instruction, const FitResult& result);

 private:
  // One truncated SVD per layer at the largest rank among `clients` (cached
  // while the product is unchanged), then the client's balanced factors.
  Adapter client_adapter(int round, std::span<const ClientInfo> clients, std::int64_t rank);

  Options options_;
  StrategyContext context_;
  TruncatedGlobal global_;
};

}  // namespace lorafed
