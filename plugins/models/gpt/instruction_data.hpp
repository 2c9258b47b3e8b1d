#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lorafed/config.hpp"
#include "lorafed/data/examples.hpp"
#include "lorafed/model_backend.hpp"
#include "word_problems.hpp"

namespace lorafed::gpt {

// What a language-model backend trains on and how it is split: generated
// word problems, or an instruction dataset read from files (README.md).
struct TaskOptions {
  std::vector<std::string> tasks = task_types();
  std::int64_t max_operand = 20;
  std::int64_t train_per_task = 1000;
  std::int64_t test_per_task = 100;
  std::string partition = "dirichlet";  // "iid", "dirichlet", "tasks" or (a dataset) "categories"
  double dirichlet_alpha = 0.5;
  std::int64_t tasks_per_client = 2;    // partition = "tasks" / categories_per_client
  std::int64_t max_train_examples = 0;  // per client; 0: all of its share
  std::int64_t eval_examples = 0;       // server test subset; 0: the whole test set
  std::uint64_t data_seed = 0;          // the problems themselves; the split follows the run seed
  std::int64_t context = 128;           // a problem and its answer must fit
  std::string model = "gpt";            // the backend, as errors name it

  // An instruction dataset instead of word problems (README.md, "Instruction datasets").
  std::string dataset;         // train file; empty: word problems
  std::string test_dataset;    // empty: hold test_fraction of `dataset` out
  std::string dataset_format;  // dolly, gsm8k, alpaca, codealpaca
  double test_fraction = 0.1;
  std::string prompt_template = "alpaca";
  std::int64_t max_length = 0;      // tokens per sequence; 0: the model's context
  std::int64_t max_new_tokens = 0;  // generated in evaluation; 0: the default per task
  std::int64_t samples = 8;         // generations the server writes per evaluation

  bool uses_dataset() const { return !dataset.empty(); }

  // How evaluation scores generations: word problems' exact answer, GSM8K's
  // final number, or (Dolly, Alpaca) loss and perplexity only.
  enum class Scoring { kExactAnswer, kFinalNumber, kLossOnly };
  Scoring scoring() const;
  // max_new_tokens, or 8 for word problems' numbers and 256 for datasets.
  std::int64_t generation_length() const;

  // Throws ConfigError for an unknown task or partition, or a bad size.
  void validate() const;
};

// The task keys of [model] for the backend `model` (README.md): partition,
// dirichlet_alpha, max_train_examples, eval_examples, data_seed, samples,
// dataset; then, with a dataset, test_dataset, dataset_format,
// test_fraction, prompt_template, max_length, max_new_tokens,
// categories_per_client, else the word problems' tasks, max_operand,
// train_per_task, test_per_task, tasks_per_client (so a key of the other
// source is left unread, and refused as unknown).
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

// What cutting sequences to a length removed.
struct CutCount {
  std::int64_t sequences = 0;       // cut short
  std::int64_t answer_tokens = 0;   // answer (and end) tokens cut off
  std::int64_t without_answer = 0;  // dropped: the prompt alone filled the length
};

// Token sequences for next-token training on answers only: inputs are the
// sequence without its last token, labels the next token where it is part
// of the answer (or the final end token) and -100 (ignored) on the prompt
// and padding. Padded with the end token. With `max_length` > 0 a sequence
// longer than max_length + 1 tokens keeps its first max_length + 1, and a
// problem whose prompt leaves no answer token is dropped from `problems`;
// `cut` counts both.
data::Examples encode_for_training(const std::vector<WordProblem>& problems,
                                   const SequenceEncoder& encoder = byte_encoder());
data::Examples encode_for_training(std::vector<WordProblem>& problems,
                                   const SequenceEncoder& encoder, std::int64_t max_length,
                                   CutCount& cut);

// A client's train share and its test split (same task mix), or the
// server's test set (train empty), as problems and as training sequences.
struct RoleData {
  std::vector<WordProblem> train_problems;
  std::vector<WordProblem> test_problems;
  data::Examples train;
  data::Examples test;
  std::shared_ptr<const void> source;  // a dataset's pools, shared in the process
};
RoleData load_role_data(const TaskOptions& options, const ModelContext& context,
                        const SequenceEncoder& encoder = byte_encoder());

}  // namespace lorafed::gpt
