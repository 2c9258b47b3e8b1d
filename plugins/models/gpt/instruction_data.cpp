#include "instruction_data.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <random>

#include "byte_tokenizer.hpp"
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

void TaskOptions::validate() const {
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
  if (!(dirichlet_alpha > 0)) throw ConfigError(model + " model: dirichlet_alpha must be positive");
  if (partition == "tasks" &&
      (tasks_per_client < 1 || tasks_per_client > static_cast<std::int64_t>(tasks.size()))) {
    throw ConfigError(model + " model: tasks_per_client must be between 1 and the number of tasks");
  }
  if (train_per_task < 1 || test_per_task < 1)
    throw ConfigError(model + " model: train_per_task and test_per_task must be positive");
  if (max_train_examples < 0 || eval_examples < 0)
    throw ConfigError(model + " model: max_train_examples and eval_examples must not be negative");
}

TaskOptions read_task_options(const ConfigTable& config, const std::string& model) {
  TaskOptions tasks;
  tasks.model = model;
  tasks.tasks = config.get<std::vector<std::string>>("tasks", tasks.tasks);
  tasks.max_operand = config.get<std::int64_t>("max_operand", tasks.max_operand);
  tasks.train_per_task = config.get<std::int64_t>("train_per_task", tasks.train_per_task);
  tasks.test_per_task = config.get<std::int64_t>("test_per_task", tasks.test_per_task);
  tasks.partition = config.get<std::string>("partition", tasks.partition);
  tasks.dirichlet_alpha = config.get<double>("dirichlet_alpha", tasks.dirichlet_alpha);
  tasks.tasks_per_client = config.get<std::int64_t>("tasks_per_client", tasks.tasks_per_client);
  tasks.max_train_examples = config.get<std::int64_t>("max_train_examples", 0);
  tasks.eval_examples = config.get<std::int64_t>("eval_examples", 0);
  tasks.data_seed = static_cast<std::uint64_t>(config.get<std::int64_t>("data_seed", 0));
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
  std::vector<std::vector<std::int64_t>> sequences;
  std::vector<std::size_t> prompt_lengths;
  std::size_t longest = 0;
  for (const WordProblem& problem : problems) {
    std::vector<std::int64_t> sequence = encoder.prefix;
    const auto prompt = encoder.encode(problem.prompt);
    sequence.insert(sequence.end(), prompt.begin(), prompt.end());
    prompt_lengths.push_back(sequence.size());
    const auto answer = encoder.encode(problem.answer);
    sequence.insert(sequence.end(), answer.begin(), answer.end());
    sequence.push_back(encoder.end);
    longest = std::max(longest, sequence.size() - 1);
    sequences.push_back(std::move(sequence));
  }
  const auto n = static_cast<std::int64_t>(problems.size());
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
  return {inputs, labels};
}

RoleData load_role_data(const TaskOptions& options, const ModelContext& context,
                        const SequenceEncoder& encoder) {
  options.validate();
  // The same pools on every client and the server: they depend on data_seed only.
  std::vector<WordProblem> train_pool;
  std::vector<WordProblem> test_pool;
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
    train_pool.insert(train_pool.end(), train.begin(), train.end());
    test_pool.insert(test_pool.end(), test.begin(), test.end());
  }

  RoleData role;
  if (context.role == ModelContext::Role::kServer) {
    std::vector<std::int64_t> indices(test_pool.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
    if (options.eval_examples > 0 &&
        options.eval_examples < static_cast<std::int64_t>(indices.size())) {
      // A seeded subset that keeps every task type (test_pool is grouped by type).
      std::mt19937_64 rng(derive_seed(options.data_seed, {0x45564c /* EVL */}));
      std::shuffle(indices.begin(), indices.end(), rng);
      indices.resize(static_cast<std::size_t>(options.eval_examples));
      std::sort(indices.begin(), indices.end());
    }
    role.test_problems = pick(test_pool, indices);
  } else {
    const auto tasks = static_cast<std::int64_t>(options.tasks.size());
    const std::uint64_t mix_seed = derive_seed(context.seed, {0x4d4958 /* MIX */});
    const data::LabelMix mix =
        options.partition == "iid" ? data::iid_mix(context.num_clients, tasks)
        : options.partition == "tasks"
            ? data::classes_per_client_mix(context.num_clients, tasks, options.tasks_per_client,
                                           mix_seed)
            : data::dirichlet_mix(context.num_clients, tasks, options.dirichlet_alpha, mix_seed);
    const data::ClientSplit split = data::client_split(
        types_of(train_pool), types_of(test_pool), mix, context.client_index,
        options.max_train_examples, 0, derive_seed(context.seed, {0x53504c /* SPL */}));
    role.train_problems = pick(train_pool, split.train);
    role.test_problems = pick(test_pool, split.test);
    if (role.train_problems.empty()) {
      throw ConfigError(options.model + " model: client " + std::to_string(context.client_index) +
                        " got no training problems; use fewer clients, more train_per_task or "
                        "another partition");
    }
    role.train = encode_for_training(role.train_problems, encoder);
  }
  if (!role.test_problems.empty()) role.test = encode_for_training(role.test_problems, encoder);
  for (const auto* set : {&role.train, &role.test}) {
    if (set->inputs.defined() && set->inputs.size(1) > options.context) {
      throw ConfigError(
          options.model + " model: problems of " + std::to_string(set->inputs.size(1) + 1) +
          " tokens do not fit the model's context of " + std::to_string(options.context));
    }
  }
  return role;
}

}  // namespace lorafed::gpt
