#pragma once

#include <cstdint>
#include <initializer_list>

#include "lorafed/export.hpp"

namespace lorafed {

// A seed for one purpose derived from the run's seed and the parts that
// name the purpose (client index, round, ...), with splitmix64 mixing, so
// that every client and round draws independent, reproducible numbers.
LORAFED_API std::uint64_t derive_seed(std::uint64_t base,
                                      std::initializer_list<std::uint64_t> parts);

}  // namespace lorafed
