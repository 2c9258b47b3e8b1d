#pragma once
// FedProx's client (docs/algorithms.md §FedProx), shared by the fedprox
// plugin and by the strategies that offer a proximal term at heterogeneous
// ranks (fedhl and flexlora: `proximal_mu`).

#include <cmath>
#include <memory>
#include <string>

#include "lorafed/client_procedure.hpp"
#include "lorafed/config.hpp"
#include "lorafed/proximal_term.hpp"

namespace lorafed::fedprox {

// μ from `config`'s `key`, in [0, 1e6].
inline double read_mu(const ConfigTable& config, const std::string& key, double fallback) {
  const double mu = config.get<double>(key, fallback);
  if (!std::isfinite(mu) || mu < 0 || mu > 1e6) {
    throw_config_error(config, key, "must be in [0, 1e6], got " + std::to_string(mu));
  }
  return mu;
}

// LoRA training plus μ/2 ‖θ − θ_sent‖² over the adapter's factors: the
// anchor is the adapter as sent, at the client's own rank, which is where
// its training starts.
class ProximalProcedure final : public LoraTrainingProcedure {
 public:
  explicit ProximalProcedure(double mu) : mu_(mu) {}

  FitOutcome fit(ModelBackend& model, const FitInstruction& instruction,
                 const ClientContext& context) override {
    ClientContext proximal = context;
    proximal.train.hook = proximal_term(mu_, to_named_tensors(instruction.adapter));
    return LoraTrainingProcedure::fit(model, instruction, proximal);
  }

 private:
  double mu_;
};

// Plain LoRA training for μ = 0 (bit for bit what it was), the proximal
// procedure otherwise.
inline std::unique_ptr<ClientProcedure> make_procedure(double mu) {
  if (mu == 0) return std::make_unique<LoraTrainingProcedure>();
  return std::make_unique<ProximalProcedure>(mu);
}

}  // namespace lorafed::fedprox
