#pragma once
// FedAvg's server half (docs/algorithms.md §FedAvg), shared by the fedavg,
// fedprox and ditto plugins: they change what clients do, not the server.

#include <memory>
#include <string>

#include "lorafed/config.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed::fedavg {

// Who evaluates what on the clients' side.
enum class ClientEvaluation {
  kConfigured,  // `evaluate_clients` (default false): the global adapter, example-weighted mean
  kPersonal,    // always: each client its own model, mean ± std over clients (Ditto)
};

// Reads `weighting` (and `evaluate_clients` when kConfigured) from
// `config`; `name` is the strategy's name in error messages.
std::unique_ptr<Strategy> make_strategy(
    const ConfigTable& config, std::string name,
    ClientEvaluation evaluation = ClientEvaluation::kConfigured);

}  // namespace lorafed::fedavg
