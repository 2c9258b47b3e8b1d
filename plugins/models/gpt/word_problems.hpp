#pragma once
// The instruction-tuning task: arithmetic word problems in the spirit of
// GSM8K, generated from templates, one kind per task type, so a federation
// can be split non-IID by task type. An answer is the number, exactly.

#include <cstdint>
#include <string>
#include <vector>

namespace lorafed::gpt {

// A prompt and the answer a model should give to it: a generated word
// problem, or a record of an instruction dataset through its template.
struct WordProblem {
  std::string prompt;  // "Q: ...\nA: "
  std::string answer;  // "19"
  std::int64_t type = 0;
};

// A generated problem with its question alone and its working, for writing
// it out in a dataset's format (lorafed-word-problems).
struct WorkedProblem {
  WordProblem problem;
  std::string question;  // the question without "Q: " and "\nA: "
  std::string working;   // the arithmetic, "12 + 7 = 19" (two lines for two steps)
};

// add, subtract, multiply, share, two_step, compare (multi-step
// arithmetic), and recall (read the asked-for one of two numbers back: the
// one-step warm-up).
const std::vector<std::string>& task_types();

// `count` distinct problems of task type `type` (an index into task_types())
// with operands in 1..max_operand (multiplication and sharing: factors in
// 2..min(9, max_operand)), none of whose prompt is in `exclude`. Seeded.
std::vector<WordProblem> generate_problems(std::int64_t type, std::int64_t count,
                                           std::int64_t max_operand, std::uint64_t seed,
                                           const std::vector<WordProblem>& exclude = {});
// The same problems, with their questions and working.
std::vector<WorkedProblem> generate_worked_problems(std::int64_t type, std::int64_t count,
                                                    std::int64_t max_operand, std::uint64_t seed,
                                                    const std::vector<WordProblem>& exclude = {});

}  // namespace lorafed::gpt
