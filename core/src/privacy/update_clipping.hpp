#pragma once

#include <ATen/core/Generator.h>

#include <cstdint>

#include "lorafed/named_tensors.hpp"

namespace lorafed {

// The L2 norm of all of `update`'s tensors together, in double precision.
double update_norm(const NamedTensors& update);

// min(1, C / ‖u‖): the factor that clips `norm` to `clip_norm` (1 for 0).
double clip_factor(double norm, double clip_norm);

// `into` += factor · `update`; `into` gets `update`'s names and shapes
// when empty. A name or shape that differs is a FormatError naming it.
void add_scaled(NamedTensors& into, const NamedTensors& update, double factor);

// Adds independent N(0, stddev²) noise to every element of `update`.
void add_gaussian_noise(NamedTensors& update, double stddev, at::Generator& generator);

// A CPU generator seeded with `seed`.
at::Generator noise_generator(std::uint64_t seed);

}  // namespace lorafed
