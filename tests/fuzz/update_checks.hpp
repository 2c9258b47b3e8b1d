#pragma once

// The server's checks on a client's update (src/server/update_checks.hpp)
// against a small model spec, as the fuzz target and the unit test that
// replays tests/fuzz/regressions run them. Throws lorafed::FormatError on a
// refusal.
#include <variant>

#include "src/server/update_checks.hpp"
#include "src/wire/messages.hpp"

namespace lorafed::fuzz {

// The model of the seed corpus's adapters (seed_corpus.cpp): A 2×5, B 6×2,
// and a shared "head.weight" 3×2; ranks up to 4.
inline void check_update(NamedTensors tensors, const wire::Body& body) {
  static const ModelSpec spec{"fuzz", {{"fc1", 5, 6}}, {{"head.weight", {3, 2}}}};
  const auto* fit = std::get_if<wire::FitResBody>(&body);
  lorafed::check_update(std::move(tensors), fit ? fit->alpha : 16.0, spec, 4);
}

}  // namespace lorafed::fuzz
