#pragma once
// The instruction-tuning task: arithmetic word problems in the spirit of
// GSM8K, generated from templates, one kind per task type, so a federation
// can be split non-IID by task type. An answer is the number, exactly.

#include <cstdint>
#include <string>
#include <vector>

namespace lorafed::gpt {

struct WordProblem {
  std::string prompt;  // "Q: ...\nA: "
  std::string answer;  // "19"
  std::int64_t type = 0;
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

}  // namespace lorafed::gpt
