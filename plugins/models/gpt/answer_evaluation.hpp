#pragma once
// Evaluating the instruction task: validation loss on the answer tokens and
// exact-match accuracy of greedily decoded answers.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gpt_model.hpp"
#include "instruction_data.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"
#include "word_problems.hpp"

namespace lorafed::gpt {

// The model's answer to each prompt (encoder.prefix + encoder.encode(prompt)):
// greedy decoding (the most likely next token, every step) until
// encoder.end (or, with `first_line`, a newline in the decoded text), at
// most `max_new_tokens` tokens or the model's context, decoded by
// encoder.decode (with `first_line`, cut before the newline).
std::vector<std::string> greedy_answers(const LoraGpt& model,
                                        const std::vector<WordProblem>& problems,
                                        const SequenceEncoder& encoder, std::int64_t max_new_tokens,
                                        std::int64_t batch_size, bool first_line = true);

// Mean cross-entropy per answer token (labels ≥ 0) of `sequences` under
// `logits` (tokens batch × length → logits batch × length × vocab).
double answer_loss(const std::function<torch::Tensor(const torch::Tensor&)>& logits,
                   const data::Examples& sequences, std::int64_t batch_size);

// The share of `problems` whose answer equals `answers` (one per problem)
// after surrounding whitespace is trimmed from the latter.
double exact_match(const std::vector<WordProblem>& problems,
                   const std::vector<std::string>& answers);

}  // namespace lorafed::gpt
