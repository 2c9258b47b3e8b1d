#pragma once
// Text generation from a LoraLlama: greedy, or sampled with a temperature and
// nucleus (top-p) cut, until a stop token or a length limit.

#include <cstdint>
#include <vector>

#include "llama_model.hpp"

namespace lorafed::llama {

struct GenerationOptions {
  std::int64_t max_new_tokens = 32;
  double temperature = 0;  // 0: greedy (the most likely token every step)
  double top_p = 1;        // sample from the smallest set of tokens holding this probability
  std::vector<std::int64_t> stop_tokens;
  std::uint64_t seed = 0;
  bool use_cache = true;  // false recomputes the whole sequence each step (for tests)
  std::int64_t batch_size = 16;
};

// Each prompt's continuation, without the stop token that ended it. Prompts
// of equal length are batched together, so no padding changes any result.
// Throws Error when a prompt is empty or prompt + max_new_tokens exceeds the
// model's positions.
std::vector<std::vector<std::int64_t>> generate(
    const LoraLlama& model, const std::vector<std::vector<std::int64_t>>& prompts,
    const GenerationOptions& options);

}  // namespace lorafed::llama
