#include "instruction_data.hpp"

#include <ATen/ATen.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "byte_tokenizer.hpp"
#include "instruction_dataset.hpp"
#include "lorafed/data/partition.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"

namespace lorafed::gpt {
namespace {

constexpr std::int64_t kIgnored = -100;  // cross-entropy's default ignore_index

std::vector<WordProblem> pick(const std::vector<WordProblem>& pool,
                              const std::vector<std::int64_t>& indices) {
  std::vector<WordProblem> picked;
  picked.reserve(indices.size());
  for (std::int64_t i : indices) picked.push_back(pool[static_cast<std::size_t>(i)]);
  return picked;
}

std::vector<std::int64_t> types_of(const std::vector<WordProblem>& problems) {
  std::vector<std::int64_t> types;
  for (const WordProblem& problem : problems) types.push_back(problem.type);
  return types;
}

}  // namespace

TaskOptions::Scoring TaskOptions::scoring() const {
  if (!uses_dataset()) return Scoring::kExactAnswer;
  return dataset_format == "gsm8k" ? Scoring::kFinalNumber : Scoring::kLossOnly;
}

std::int64_t TaskOptions::generation_length() const {
  if (max_new_tokens > 0) return max_new_tokens;
  return uses_dataset() ? 256 : 8;
}

void TaskOptions::validate() const {
  if (uses_dataset()) {
    if (partition != "iid" && partition != "dirichlet" && partition != "categories") {
      throw ConfigError(model + " model: with a dataset, partition must be \"iid\", " +
                        "\"dirichlet\" or \"categories\", got \"" + partition + "\"");
    }
    if (dataset_format.empty()) {
      throw ConfigError(model + " model: dataset needs dataset_format (\"dolly\", \"gsm8k\", " +
                        "\"alpaca\" or \"codealpaca\")");
    }
    if (max_length < 0 || max_new_tokens < 0)
      throw ConfigError(model + " model: max_length and max_new_tokens must not be negative");
    if (tasks_per_client < 1)
      throw ConfigError(model + " model: categories_per_client must be at least 1");
  } else {
    if (tasks.empty()) throw ConfigError(model + " model: tasks must name at least one task type");
    for (const std::string& task : tasks) {
      if (std::find(task_types().begin(), task_types().end(), task) == task_types().end()) {
        throw ConfigError(model + " model: unknown task '" + task +
                          "' (add, subtract, multiply, share, two_step, compare, recall)");
      }
    }
    if (partition != "iid" && partition != "dirichlet" && partition != "tasks") {
      throw ConfigError(model +
                        " model: partition must be \"iid\", \"dirichlet\" or \"tasks\", got \"" +
                        partition + "\"");
    }
    if (partition == "tasks" &&
        (tasks_per_client < 1 || tasks_per_client > static_cast<std::int64_t>(tasks.size()))) {
      throw ConfigError(model +
                        " model: tasks_per_client must be between 1 and the number of tasks");
    }
    if (train_per_task < 1 || test_per_task < 1)
      throw ConfigError(model + " model: train_per_task and test_per_task must be positive");
  }
  if (!(dirichlet_alpha > 0)) throw ConfigError(model + " model: dirichlet_alpha must be positive");
  if (max_train_examples < 0 || eval_examples < 0 || samples < 0) {
    throw ConfigError(model +
                      " model: max_train_examples, eval_examples and samples must not be negative");
  }
}

TaskOptions read_task_options(const ConfigTable& config, const std::string& model) {
  TaskOptions tasks;
  tasks.model = model;
  tasks.partition = config.get<std::string>("partition", tasks.partition);
  tasks.dirichlet_alpha = config.get<double>("dirichlet_alpha", tasks.dirichlet_alpha);
  tasks.max_train_examples = config.get<std::int64_t>("max_train_examples", 0);
  tasks.eval_examples = config.get<std::int64_t>("eval_examples", 0);
  tasks.data_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("data_seed", 0));
  tasks.samples = config.get<std::int64_t>("samples", tasks.samples);
  tasks.dataset = config.get<std::string>("dataset", "");
  // Each source's own keys only, so a key of the other is refused as unknown.
  if (tasks.uses_dataset()) {
    tasks.test_dataset = config.get<std::string>("test_dataset", "");
    tasks.dataset_format = config.get<std::string>("dataset_format", "");
    tasks.test_fraction = config.get<double>("test_fraction", tasks.test_fraction);
    tasks.prompt_template = config.get<std::string>("prompt_template", tasks.prompt_template);
    tasks.max_length = config.get<std::int64_t>("max_length", 0);
    tasks.max_new_tokens = config.get<std::int64_t>("max_new_tokens", 0);
    tasks.tasks_per_client =
        config.get<std::int64_t>("categories_per_client", tasks.tasks_per_client);
  } else {
    tasks.tasks = config.get<std::vector<std::string>>("tasks", tasks.tasks);
    tasks.max_operand = config.get<std::int64_t>("max_operand", tasks.max_operand);
    tasks.train_per_task = config.get<std::int64_t>("train_per_task", tasks.train_per_task);
    tasks.test_per_task = config.get<std::int64_t>("test_per_task", tasks.test_per_task);
    tasks.tasks_per_client = config.get<std::int64_t>("tasks_per_client", tasks.tasks_per_client);
  }
  return tasks;
}

SequenceEncoder byte_encoder() {
  return {[](const std::string& text) { return encode_bytes(text); },
          kEndOfText,
          {},
          [](const std::vector<std::int64_t>& tokens) { return decode_bytes(tokens); }};
}

data::Examples encode_for_training(const std::vector<WordProblem>& problems,
                                   const SequenceEncoder& encoder) {
  std::vector<WordProblem> copy = problems;
  CutCount cut;
  return encode_for_training(copy, encoder, 0, cut);
}

data::Examples encode_for_training(std::vector<WordProblem>& problems,
                                   const SequenceEncoder& encoder, std::int64_t max_length,
                                   CutCount& cut) {
  std::vector<std::vector<std::int64_t>> sequences;
  std::vector<std::size_t> prompt_lengths;
  std::vector<WordProblem> kept;
  std::size_t longest = 0;
  const auto limit = static_cast<std::size_t>(max_length) + 1;  // tokens a sequence may keep
  for (WordProblem& problem : problems) {
    std::vector<std::int64_t> sequence = encoder.prefix;
    const auto prompt = encoder.encode(problem.prompt);
    sequence.insert(sequence.end(), prompt.begin(), prompt.end());
    const std::size_t prompt_length = sequence.size();
    const auto answer = encoder.encode(problem.answer);
    sequence.insert(sequence.end(), answer.begin(), answer.end());
    sequence.push_back(encoder.end);
    if (max_length > 0 && sequence.size() > limit) {
      if (prompt_length >= limit) {
        ++cut.without_answer;
        continue;
      }
      ++cut.sequences;
      cut.answer_tokens += static_cast<std::int64_t>(sequence.size() - limit);
      sequence.resize(limit);
    }
    prompt_lengths.push_back(prompt_length);
    longest = std::max(longest, sequence.size() - 1);
    sequences.push_back(std::move(sequence));
    kept.push_back(std::move(problem));
  }
  problems = std::move(kept);
  const auto n = static_cast<std::int64_t>(sequences.size());
  const auto length = static_cast<std::int64_t>(longest);
  at::Tensor inputs = at::full({n, length}, encoder.end, at::kLong);
  at::Tensor labels = at::full({n, length}, kIgnored, at::kLong);
  auto in = inputs.accessor<std::int64_t, 2>();
  auto out = labels.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& sequence = sequences[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j + 1 < sequence.size(); ++j) {
      in[i][static_cast<std::int64_t>(j)] = sequence[j];
      if (j + 1 >= prompt_lengths[static_cast<std::size_t>(i)])
        out[i][static_cast<std::int64_t>(j)] = sequence[j + 1];
    }
  }
  return {inputs, labels, {}};
}

namespace {

// Every process's word problems: generated from data_seed alone.
DatasetPools word_problem_pools(const TaskOptions& options) {
  DatasetPools pools;
  pools.categories = options.tasks;
  for (std::size_t t = 0; t < options.tasks.size(); ++t) {
    const auto type = static_cast<std::int64_t>(
        std::find(task_types().begin(), task_types().end(), options.tasks[t]) -
        task_types().begin());
    auto train = generate_problems(type, options.train_per_task, options.max_operand,
                                   derive_seed(options.data_seed, {0x545241 /* TRA */, t}));
    auto test = generate_problems(type, options.test_per_task, options.max_operand,
                                  derive_seed(options.data_seed, {0x545354 /* TST */, t}), train);
    // Task types are numbered 0.. among the chosen tasks, as the split's classes.
    for (auto& problem : train) problem.type = static_cast<std::int64_t>(t);
    for (auto& problem : test) problem.type = static_cast<std::int64_t>(t);
    pools.train.insert(pools.train.end(), train.begin(), train.end());
    pools.test.insert(pools.test.end(), test.begin(), test.end());
  }
  return pools;
}

// Encodes a role's problems; a dataset's are cut to max_length and the cut
// reported, word problems must fit the context whole.
data::Examples encode_role_set(std::vector<WordProblem>& problems, const TaskOptions& options,
                               const SequenceEncoder& encoder, const std::string& who,
                               const char* set) {
  if (!options.uses_dataset()) {
    data::Examples examples = encode_for_training(problems, encoder);
    if (examples.inputs.size(1) > options.context) {
      throw ConfigError(
          options.model + " model: problems of " + std::to_string(examples.inputs.size(1) + 1) +
          " tokens do not fit the model's context of " + std::to_string(options.context));
    }
    return examples;
  }
  const std::int64_t length =
      options.max_length > 0 ? std::min(options.max_length, options.context) : options.context;
  CutCount cut;
  const auto before = static_cast<std::int64_t>(problems.size());
  data::Examples examples = encode_for_training(problems, encoder, length, cut);
  if (cut.sequences > 0 || cut.without_answer > 0) {
    spdlog::warn(
        "{} model: {} {} set: {} of {} sequences cut to {} tokens ({} response tokens lost); {} "
        "dropped whose prompt alone fills {} tokens",
        options.model, who, set, cut.sequences, before, length, cut.answer_tokens,
        cut.without_answer, length);
  }
  return examples;
}

}  // namespace

RoleData load_role_data(const TaskOptions& options, const ModelContext& context,
                        const SequenceEncoder& encoder) {
  options.validate();
  // The same pools on every client and the server.
  std::shared_ptr<const DatasetPools> shared;
  DatasetPools generated;
  if (options.uses_dataset()) {
    shared =
        load_dataset_pools({options.dataset, options.test_dataset, options.dataset_format,
                            options.test_fraction, options.prompt_template, options.data_seed});
  } else {
    generated = word_problem_pools(options);
  }
  const DatasetPools& pools = shared ? *shared : generated;
  const auto classes = static_cast<std::int64_t>(pools.categories.size());
  if (options.partition == "categories" && options.tasks_per_client > classes) {
    throw ConfigError(options.model + " model: categories_per_client is " +
                      std::to_string(options.tasks_per_client) + " but " + options.dataset +
                      " has " + std::to_string(classes) + " categories");
  }

  RoleData role;
  role.source = shared;
  std::string who = "server";
  if (context.role == ModelContext::Role::kServer) {
    std::vector<std::int64_t> indices(pools.test.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
    if (options.eval_examples > 0 &&
        options.eval_examples < static_cast<std::int64_t>(indices.size())) {
      // A seeded subset that keeps every class in expectation.
      std::mt19937_64 rng(derive_seed(options.data_seed, {0x45564c /* EVL */}));
      std::shuffle(indices.begin(), indices.end(), rng);
      indices.resize(static_cast<std::size_t>(options.eval_examples));
      std::sort(indices.begin(), indices.end());
    }
    role.test_problems = pick(pools.test, indices);
  } else {
    who = "client " + std::to_string(context.client_index);
    const std::uint64_t mix_seed = derive_seed(context.seed, {0x4d4958 /* MIX */});
    const data::LabelMix mix =
        options.partition == "iid" ? data::iid_mix(context.num_clients, classes)
        : options.partition == "tasks" || options.partition == "categories"
            ? data::classes_per_client_mix(context.num_clients, classes, options.tasks_per_client,
                                           mix_seed)
            : data::dirichlet_mix(context.num_clients, classes, options.dirichlet_alpha, mix_seed);
    const data::ClientSplit split = data::client_split(
        types_of(pools.train), types_of(pools.test), mix, context.client_index,
        options.max_train_examples, 0, derive_seed(context.seed, {0x53504c /* SPL */}));
    role.train_problems = pick(pools.train, split.train);
    role.test_problems = pick(pools.test, split.test);
    if (role.train_problems.empty()) {
      throw ConfigError(options.model + " model: client " + std::to_string(context.client_index) +
                        " got no training examples; use fewer clients, more data or another "
                        "partition");
    }
    role.train = encode_role_set(role.train_problems, options, encoder, who, "train");
    if (role.train_problems.empty()) {
      throw ConfigError(options.model + " model: client " + std::to_string(context.client_index) +
                        ": no training example fits max_length");
    }
  }
  if (!role.test_problems.empty())
    role.test = encode_role_set(role.test_problems, options, encoder, who, "test");
  return role;
}

}  // namespace lorafed::gpt
