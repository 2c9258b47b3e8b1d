#include "generation.hpp"

#include <algorithm>
#include <map>

#include "lorafed/error.hpp"

namespace lorafed::llama {
namespace {

// The next token of each row from its last logits (rows × vocab).
torch::Tensor next_tokens(const torch::Tensor& logits, const GenerationOptions& options,
                          torch::Generator& generator) {
  if (options.temperature <= 0) return logits.argmax(-1);
  torch::Tensor probabilities = torch::softmax(logits / options.temperature, -1);
  if (options.top_p < 1) {
    const auto [sorted, order] = probabilities.sort(-1, /*descending=*/true);
    // Keep a token while the tokens before it hold less than top_p: the first always stays.
    const torch::Tensor before = sorted.cumsum(-1) - sorted;
    const torch::Tensor kept = sorted.masked_fill(before >= options.top_p, 0);
    probabilities = torch::zeros_like(probabilities).scatter(-1, order, kept);
  }
  return torch::multinomial(probabilities, 1, /*replacement=*/false, generator).squeeze(-1);
}

std::vector<std::vector<std::int64_t>> generate_batch(
    const LoraLlama& model, const std::vector<std::vector<std::int64_t>>& prompts,
    const GenerationOptions& options, torch::Generator& generator) {
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto length = static_cast<std::int64_t>(prompts.front().size());
  torch::Tensor sequence = torch::empty({rows, length}, torch::kLong);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::copy(prompts[static_cast<std::size_t>(r)].begin(),
              prompts[static_cast<std::size_t>(r)].end(), sequence[r].data_ptr<std::int64_t>());
  }
  std::vector<std::vector<std::int64_t>> outputs(prompts.size());
  std::vector<bool> stopped(prompts.size(), false);
  KvCache cache;
  torch::Tensor input = sequence;
  for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
    const torch::Tensor logits =
        options.use_cache ? model.forward(input, &cache) : model.forward(sequence);
    const torch::Tensor next =
        next_tokens(logits.select(1, logits.size(1) - 1), options, generator);
    const auto* chosen = next.data_ptr<std::int64_t>();
    bool all_stopped = true;
    for (std::size_t r = 0; r < outputs.size(); ++r) {
      if (stopped[r]) continue;
      const std::int64_t token = chosen[r];
      if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
          options.stop_tokens.end()) {
        stopped[r] = true;
        continue;
      }
      outputs[r].push_back(token);
      all_stopped = false;
    }
    if (all_stopped) break;
    input = next.unsqueeze(1);
    if (!options.use_cache) sequence = torch::cat({sequence, input}, 1);
  }
  return outputs;
}

}  // namespace

std::vector<std::vector<std::int64_t>> generate(
    const LoraLlama& model, const std::vector<std::vector<std::int64_t>>& prompts,
    const GenerationOptions& options) {
  if (options.max_new_tokens < 0 || options.batch_size < 1 || !(options.top_p > 0) ||
      options.top_p > 1 || !(options.temperature >= 0))
    throw Error(
        "llama generation: max_new_tokens ≥ 0, batch_size ≥ 1, 0 < top_p ≤ 1 and temperature ≥ 0");
  std::map<std::size_t, std::vector<std::size_t>> by_length;  // prompt length → prompt indices
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw Error("llama generation: prompt " + std::to_string(i) + " is empty");
    const auto needed = static_cast<std::int64_t>(prompts[i].size()) + options.max_new_tokens;
    if (needed > model.config().max_position_embeddings) {
      throw Error("llama generation: prompt " + std::to_string(i) + " (" +
                  std::to_string(prompts[i].size()) + " tokens) and " +
                  std::to_string(options.max_new_tokens) +
                  " new tokens exceed max_position_embeddings (" +
                  std::to_string(model.config().max_position_embeddings) + ")");
    }
    by_length[prompts[i].size()].push_back(i);
  }
  torch::NoGradGuard no_grad;
  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<std::vector<std::int64_t>> outputs(prompts.size());
  for (const auto& [length, indices] : by_length) {
    for (std::size_t first = 0; first < indices.size();
         first += static_cast<std::size_t>(options.batch_size)) {
      const std::size_t last =
          std::min(indices.size(), first + static_cast<std::size_t>(options.batch_size));
      std::vector<std::vector<std::int64_t>> batch;
      for (std::size_t i = first; i < last; ++i) batch.push_back(prompts[indices[i]]);
      auto generated = generate_batch(model, batch, options, generator);
      for (std::size_t i = first; i < last; ++i)
        outputs[indices[i]] = std::move(generated[i - first]);
    }
  }
  return outputs;
}

}  // namespace lorafed::llama
