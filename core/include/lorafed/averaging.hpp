#pragma once
// Weighted averages of what clients return (docs/algorithms.md §FedAvg,
// §pFedLoRA, §LG-FedAvg): shared by every strategy that averages.

#include <span>
#include <string>
#include <vector>

#include "lorafed/adapter.hpp"
#include "lorafed/export.hpp"
#include "lorafed/named_tensors.hpp"
#include "lorafed/strategy.hpp"

namespace lorafed {

// The one LoRA rank every client in `clients` has (0 when there are none).
// Factors can be averaged only at one rank: throws lorafed::ConfigError
// naming `strategy` and two clients that differ.
LORAFED_API std::int64_t require_one_rank(std::span<const ClientInfo> clients,
                                          const std::string& strategy);

// The instructions of a strategy that sends every client the same global
// adapter (FedAvg, pFedLoRA): `global` starts as LoRA's initialisation at the
// clients' common rank the first time; a client whose rank differs from it
// is a lorafed::ConfigError naming `strategy`.
LORAFED_API std::vector<FitInstruction> instruct_with_global_adapter(
    Adapter& global, std::span<const ClientInfo> clients, const StrategyContext& context,
    const std::string& strategy);

// Σ_i p_i B_i and Σ_i p_i A_i per layer, each factor averaged separately.
// Every result must carry the layers and rank of the first; throws
// lorafed::FormatError naming the client otherwise. `weights` are p_i, in
// the order of `results` (normalised by the caller).
LORAFED_API Adapter average_adapters(std::span<const FitResult> results,
                                     std::span<const double> weights);

// Σ_i p_i θ_i for every shared parameter the results carry (they must all
// carry the same names and shapes).
LORAFED_API NamedTensors average_parameters(std::span<const FitResult> results,
                                            std::span<const double> weights);

}  // namespace lorafed
