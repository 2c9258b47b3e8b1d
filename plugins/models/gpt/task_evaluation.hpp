#pragma once
// Evaluating a language model on its task as the task's benchmark scores it
// (README.md, "Evaluation"): word problems by exact answer, GSM8K by final
// number, Dolly and Alpaca by held-out loss and perplexity; generations
// written for a person to read.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "instruction_data.hpp"
#include "lorafed/model_backend.hpp"

namespace lorafed::gpt {

// The model's continuation of each problem's prompt, greedy, at most
// `max_new_tokens` tokens; cut before the first newline when `first_line`.
using AnswerGenerator = std::function<std::vector<std::string>(
    const std::vector<WordProblem>& problems, std::int64_t max_new_tokens, bool first_line)>;
// Logits (batch × length × vocab) of token batches.
using Logits = std::function<torch::Tensor(const torch::Tensor&)>;

// The share of `problems` whose `generated` text's final number
// (text::final_number) equals the number after "####" in the problem's answer.
double final_number_match(const std::vector<WordProblem>& problems,
                          const std::vector<std::string>& generated);

// Appends one JSON line per generation to `file`: {"evaluation", "prompt",
// "reference", "generated"}. Throws Error when the file cannot be written.
void write_generations(const std::filesystem::path& file, std::int64_t evaluation,
                       const std::vector<WordProblem>& problems,
                       const std::vector<std::string>& generated);

struct TaskEvaluation {
  const TaskOptions* task = nullptr;
  std::int64_t batch_size = 64;
  std::filesystem::path generations_file;  // empty: nothing written
  std::int64_t evaluation = 0;             // this evaluation's number, for the file
};

// loss: mean cross-entropy per answer token of `sequences`; metrics
// "perplexity" (exp of it, datasets), "exact_match" (word problems: the
// first line of the answer equals it; GSM8K: final numbers equal). The
// first task->samples generations go to generations_file.
EvalReport evaluate_task(const Logits& logits, const AnswerGenerator& generate,
                         const std::vector<WordProblem>& problems, const data::Examples& sequences,
                         const TaskEvaluation& how);

}  // namespace lorafed::gpt
