#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lorafed/config.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"
#include "word_problems.hpp"

namespace lorafed::gpt {

// How the `gpt` backend builds and splits its word problems (README.md).
struct TaskOptions {
  std::vector<std::string> tasks = task_types();
  std::int64_t max_operand = 20;
  std::int64_t train_per_task = 1000;
  std::int64_t test_per_task = 100;
  std::string partition = "dirichlet";  // "iid", "dirichlet" or "tasks"
  double dirichlet_alpha = 0.5;
  std::int64_t tasks_per_client = 2;    // partition = "tasks"
  std::int64_t max_train_examples = 0;  // per client; 0: all of its share
  std::int64_t eval_examples = 0;       // server test subset; 0: the whole test set
  std::uint64_t data_seed = 0;          // the problems themselves; the split follows the run seed
  std::int64_t context = 128;           // a problem and its answer must fit
  std::string model = "gpt";            // the backend, as errors name it

  // Throws ConfigError for an unknown task or partition, or a bad size.
  void validate() const;
};

// The task keys of [model] (README.md: tasks, max_operand, train_per_task,
// test_per_task, partition, dirichlet_alpha, tasks_per_client,
// max_train_examples, eval_examples, data_seed) for the backend `model`.
TaskOptions read_task_options(const ConfigTable& config, const std::string& model);

// How a model's tokenizer turns problems into tokens, and generated tokens
// back into text: a sequence is prefix + encode(prompt) + encode(answer) +
// end, the prompt and the answer encoded apart so the prompt's tokens are
// those generation starts from.
struct SequenceEncoder {
  std::function<std::vector<std::int64_t>(const std::string&)> encode;
  std::int64_t end = 0;              // ends every answer, and pads
  std::vector<std::int64_t> prefix;  // e.g. a beginning-of-sequence token
  std::function<std::string(const std::vector<std::int64_t>&)> decode;
};
// The byte tokenizer's (byte_tokenizer.hpp): no prefix, <|endoftext|> at the end.
SequenceEncoder byte_encoder();

// Token sequences for next-token training on answers only: inputs are the
// sequence without its last token, labels the next token where it is part
// of the answer (or the final end token) and -100 (ignored) on the prompt
// and padding. Padded with the end token.
data::Examples encode_for_training(const std::vector<WordProblem>& problems,
                                   const SequenceEncoder& encoder = byte_encoder());

// A client's train share and its test split (same task mix), or the
// server's test set (train empty), as problems and as training sequences.
struct RoleData {
  std::vector<WordProblem> train_problems;
  std::vector<WordProblem> test_problems;
  data::Examples train;
  data::Examples test;
};
RoleData load_role_data(const TaskOptions& options, const ModelContext& context,
                        const SequenceEncoder& encoder = byte_encoder());

}  // namespace lorafed::gpt
