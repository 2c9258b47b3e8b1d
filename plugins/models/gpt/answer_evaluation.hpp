#pragma once
// Evaluating the instruction task: validation loss on the answer tokens and
// exact-match accuracy of greedily decoded answers.

#include <cstdint>
#include <string>
#include <vector>

#include "gpt_model.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"
#include "word_problems.hpp"

namespace lorafed::gpt {

// The model's answer to each prompt: greedy decoding (the most likely next
// token, every step) until <|endoftext|> or a newline, at most
// `max_new_tokens` tokens, decoded as bytes.
std::vector<std::string> greedy_answers(const LoraGpt& model,
                                        const std::vector<WordProblem>& problems,
                                        std::int64_t max_new_tokens, std::int64_t batch_size);

// loss: mean cross-entropy per answer token (and the closing <|endoftext|>)
// of `sequences` (encode_for_training(problems)); metrics "exact_match": the
// share of problems whose greedy answer equals the answer exactly.
EvalReport evaluate_answers(const LoraGpt& model, const std::vector<WordProblem>& problems,
                            const data::Examples& sequences, std::int64_t batch_size);

}  // namespace lorafed::gpt
