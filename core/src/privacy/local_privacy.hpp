#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "lorafed/client_procedure.hpp"
#include "lorafed/strategy.hpp"
#include "src/privacy/privacy_config.hpp"
#include "src/privacy/strategy_decorator.hpp"

namespace lorafed {

// Local differential privacy, the client's half (docs/algorithms.md
// §Differential privacy): after the strategy's own fit, the change of the
// adapter's factors from what was sent is clipped to C and gets Gaussian
// noise of standard deviation z · C before it leaves the client. The
// example count and training metrics stay on the client (0 examples, no
// metrics are reported). A procedure that returns control variates or
// model parameters is refused: those would leave unprotected.
class LocalPrivacyProcedure final : public ClientProcedure {
 public:
  LocalPrivacyProcedure(std::shared_ptr<ClientProcedure> inner, const PrivacyConfig& config);
  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override;
  EvaluateOutcome evaluate(ModelBackend& model, const EvaluateInstruction& instruction,
                           const ClientContext& context) override;
  NamedTensors client_state() const override { return inner_->client_state(); }
  void load_client_state(const NamedTensors& state) override { inner_->load_client_state(state); }

 private:
  std::shared_ptr<ClientProcedure> inner_;
  PrivacyConfig config_;
};

// Local differential privacy, the server's half: the strategy runs as it
// is (its configuration checked as for central privacy); ε is reported
// for the client that has sent the most updates, each one a Gaussian
// release with multiplier z and no amplification by sampling (the server
// sees who took part).
class LocalPrivacyAccounting final : public StrategyDecorator {
 public:
  LocalPrivacyAccounting(std::shared_ptr<Strategy> inner, const PrivacyConfig& config,
                         const std::string& strategy_name);

  void initialize(const StrategyContext& context) override;
  Metrics aggregate_fit(int round, std::span<const FitResult> results,
                        std::span<const Failure> failures) override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;

 private:
  double epsilon() const;

  PrivacyConfig config_;
  std::map<std::string, std::int64_t> releases_;  // per client: updates it sent
};

}  // namespace lorafed
