#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "lorafed/strategy.hpp"

namespace lorafed {

// A strategy that hands every call to another one: the base of wrappers
// that change a few calls (CentralPrivacy, LocalPrivacyAccounting).
class StrategyDecorator : public Strategy {
 public:
  explicit StrategyDecorator(std::shared_ptr<Strategy> inner) : inner_(std::move(inner)) {}

  void initialize(const StrategyContext& context) override { inner_->initialize(context); }
  std::vector<FitInstruction> configure_fit(int round,
                                            std::span<const ClientInfo> clients) override {
    return inner_->configure_fit(round, clients);
  }
  Metrics aggregate_fit(int round, std::span<const FitResult> results,
                        std::span<const Failure> failures) override {
    return inner_->aggregate_fit(round, results, failures);
  }
  std::vector<EvaluateInstruction> configure_evaluate(
      int round, std::span<const ClientInfo> clients) override {
    return inner_->configure_evaluate(round, clients);
  }
  Metrics aggregate_evaluate(int round, std::span<const EvaluateResult> results,
                             std::span<const Failure> failures) override {
    return inner_->aggregate_evaluate(round, results, failures);
  }
  NamedTensors global_delta() const override { return inner_->global_delta(); }
  bool personalised() const override { return inner_->personalised(); }
  NamedTensors state() const override { return inner_->state(); }
  void load_state(const NamedTensors& state) override { inner_->load_state(state); }

 protected:
  Strategy& inner() const { return *inner_; }

 private:
  std::shared_ptr<Strategy> inner_;
};

}  // namespace lorafed
