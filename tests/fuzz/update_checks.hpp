#pragma once

// The checks the server makes on a client's update before it is aggregated
// (Orchestrator, fit results), in its order, against a small model spec:
// shared parameters, PEFT factor names, then the adapter's shapes, rank,
// dtype and finiteness. Used by the fuzz target and by the unit test that
// replays tests/fuzz/regressions. Throws lorafed::FormatError on a refusal.
#include <variant>

#include "lorafed/adapter.hpp"
#include "src/wire/messages.hpp"

namespace lorafed::fuzz {

// The model of the seed corpus's adapters (seed_corpus.cpp): A 2×5, B 6×2,
// and a shared "head.weight" 3×2.
inline const ModelSpec& update_spec() {
  static const ModelSpec spec{"fuzz", {{"fc1", 5, 6}}, {{"head.weight", {3, 2}}}};
  return spec;
}

inline void check_update(NamedTensors tensors, const wire::Body& body) {
  double alpha = 16.0;
  if (const auto* fit = std::get_if<wire::FitResBody>(&body)) alpha = fit->alpha;
  if (const auto* fit = std::get_if<wire::FitInsBody>(&body)) alpha = fit->alpha;
  if (const auto* evaluate = std::get_if<wire::EvaluateInsBody>(&body)) alpha = evaluate->alpha;
  const NamedTensors parameters = wire::take_prefixed(tensors, wire::kParameterPrefix);
  validate_shared_parameters(parameters, update_spec());
  validate_adapter(adapter_from_named_tensors(tensors, alpha), update_spec(), 4);
}

}  // namespace lorafed::fuzz
