#pragma once
// FedAvg's server half (docs/algorithms.md §FedAvg), shared by the fedavg
// and fedprox plugins: FedProx changes what clients do, not the server.

#include <memory>
#include <string>

#include "lorafed/config.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed::fedavg {

// Reads `weighting` and `evaluate_clients` from `config`; `name` is the
// strategy's name in error messages.
std::unique_ptr<Strategy> make_strategy(const ConfigTable& config, std::string name);

}  // namespace lorafed::fedavg
