// Instruction tuning on a dataset read from files (plugins/models/gpt/README.md,
// "Instruction datasets"): the clients' category splits, loss on response
// tokens only, cutting to max_length with a count, GSM8K's final-number
// score, and a gpt backend that trains on such a file and writes its
// generations into the run folder.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "byte_tokenizer.hpp"
#include "instruction_data.hpp"
#include "lorafed/error.hpp"
#include "src/plugin_registry.hpp"
#include "task_evaluation.hpp"
#include "unit/temp_folder.hpp"

using namespace lorafed;
using namespace lorafed::gpt;
using Catch::Matchers::Contains;
using lorafed::test::TempFolder;

namespace {

const std::vector<std::string> kCategories = {"brainstorming", "classification", "closed_qa",
                                              "open_qa"};

// `per_category` Dolly records of each category; record i answers "r<i>".
std::string dolly_lines(int per_category) {
  std::string text;
  int i = 0;
  for (const std::string& category : kCategories) {
    for (int k = 0; k < per_category; ++k, ++i) {
      text += nlohmann::json{{"instruction", "q" + std::to_string(i)},
                             {"context", k % 2 ? "ctx" : ""},
                             {"response", "r" + std::to_string(i)},
                             {"category", category}}
                  .dump() +
              "\n";
    }
  }
  return text;
}

TaskOptions dataset_task(const std::string& path, const std::string& format) {
  TaskOptions task;
  task.dataset = path;
  task.dataset_format = format;
  task.prompt_template = "qa";
  task.context = 64;
  return task;
}

ModelContext client(std::int64_t index, std::int64_t clients) {
  return ModelContext{ModelContext::Role::kClient, index, clients, 5, {}};
}

}  // namespace

TEST_CASE("a dolly file is split by category, each record to exactly one client", "[instruct]") {
  TempFolder folder("dolly-split");
  TaskOptions task = dataset_task(folder.write("dolly.jsonl", dolly_lines(10)).string(), "dolly");
  task.partition = "categories";
  task.tasks_per_client = 1;

  // The server's test set: 10% of 40 held out.
  const RoleData server =
      load_role_data(task, ModelContext{ModelContext::Role::kServer, -1, 4, 5, {}});
  CHECK(server.test_problems.size() == 4);
  CHECK(server.train_problems.empty());

  std::multiset<std::string> seen;
  for (std::int64_t c = 0; c < 4; ++c) {
    const RoleData role = load_role_data(task, client(c, 4));
    REQUIRE(!role.train_problems.empty());
    // One category per client: every training record shares its type.
    std::set<std::int64_t> types;
    for (const WordProblem& problem : role.train_problems) {
      types.insert(problem.type);
      seen.insert(problem.answer);
    }
    CHECK(types.size() == 1);
    for (const WordProblem& problem : role.test_problems) CHECK(types.count(problem.type) == 1);
  }
  // 36 training records (4 of 40 held out), none twice, none lost.
  CHECK(seen.size() == 36);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 36);
  for (const WordProblem& held : server.test_problems) CHECK(seen.count(held.answer) == 0);

  // The other splits also give every training record to exactly one client.
  task.dirichlet_alpha = 5;
  for (const char* partition : {"dirichlet", "iid"}) {
    INFO(partition);
    task.partition = partition;
    std::set<std::string> answers;
    std::size_t total = 0;
    for (std::int64_t c = 0; c < 4; ++c) {
      for (const WordProblem& problem : load_role_data(task, client(c, 4)).train_problems) {
        answers.insert(problem.answer);
        ++total;
      }
    }
    CHECK(total == 36);
    CHECK(answers.size() == 36);
  }

  task.partition = "categories";
  task.tasks_per_client = 5;
  CHECK_THROWS_WITH(load_role_data(task, client(0, 4)),
                    Contains("categories_per_client is 5 but") && Contains("has 4 categories"));
  task.partition = "tasks";
  CHECK_THROWS_AS(load_role_data(task, client(0, 4)), ConfigError);
  task.partition = "iid";
  task.dataset_format = "";
  CHECK_THROWS_WITH(load_role_data(task, client(0, 4)), Contains("needs dataset_format"));
}

TEST_CASE("dataset sequences: loss on response tokens only, cut to max_length with a count",
          "[instruct]") {
  const std::string prompt = "Q: add\nA: ";
  std::vector<WordProblem> problems = {{prompt, "12345678", 0},  // 10 + 8 + end = 19 tokens
                                       {prompt, "7", 0},         // 12 tokens
                                       {"Q: " + std::string(20, 'x') + "\nA: ", "1", 0}};
  CutCount cut;
  const data::Examples examples = encode_for_training(problems, byte_encoder(), 14, cut);
  // The third's prompt (26 tokens) leaves no answer token: dropped, and counted.
  CHECK(cut.without_answer == 1);
  CHECK(problems.size() == 2);
  // The first keeps 15 of its 19 tokens: 4 answer tokens cut off.
  CHECK(cut.sequences == 1);
  CHECK(cut.answer_tokens == 4);
  REQUIRE(examples.inputs.size(1) == 14);
  const auto labels = examples.labels.accessor<std::int64_t, 2>();
  const auto inputs = examples.inputs.accessor<std::int64_t, 2>();
  for (std::int64_t j = 0; j < 14; ++j) {
    INFO(j);
    // Position j predicts token j + 1: a response token from the prompt's last position on.
    if (j + 1 < static_cast<std::int64_t>(prompt.size())) {
      CHECK(labels[0][j] == -100);
      CHECK(labels[1][j] == -100);
    } else {
      const auto k = static_cast<std::size_t>(j + 1) - prompt.size();
      CHECK(labels[0][j] == static_cast<unsigned char>("12345678"[k]));
    }
  }
  // The short one: "7", then its end token, then padding that is never a target.
  CHECK(labels[1][9] == '7');
  CHECK(labels[1][10] == kEndOfText);
  CHECK(labels[1][11] == -100);
  CHECK(inputs[1][11] == kEndOfText);
}

TEST_CASE("gsm8k generations score by final number, worked examples", "[instruct]") {
  const std::vector<WordProblem> problems = {{"Q: ...", "48/2 = 24\n48 + 24 = 72\n#### 72", 0},
                                             {"Q: ...", "#### 1,500", 0},
                                             {"Q: ...", "#### 9", 0},
                                             {"Q: ...", "#### 4", 0}};
  const std::vector<std::string> generated = {"48 + 24 = 72\n#### 72", "So 1500 in all.",
                                              "#### 8 and then 9", "no idea"};
  CHECK(final_number_match(problems, generated) == Approx(0.5));
}

TEST_CASE("the gpt backend tunes on a gsm8k file and writes its generations to the run folder",
          "[instruct][gpt]") {
  TempFolder folder("gsm8k-backend");
  std::string lines;
  for (int i = 0; i < 20; ++i) {
    lines += nlohmann::json{{"question", std::to_string(i) + "+1?"},
                            {"answer", std::to_string(i) + "+1=" + std::to_string(i + 1) +
                                           "\n#### " + std::to_string(i + 1)}}
                 .dump() +
             "\n";
  }
  const auto data = folder.write("train.jsonl", lines);
  const auto run = folder.path() / "run";
  std::filesystem::create_directories(run);
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("gpt");
  const auto make = [&](const std::string& format_keys, const ModelContext& context) {
    const auto config = ConfigTable::parse_string(
        "n_layer = 1\nn_embd = 8\nn_head = 2\ncontext = 64\npretrain_steps = 1\n"
        "pretrain_batch_size = 2\nprompt_template = \"qa\"\nsamples = 3\nmax_new_tokens = 6\n"
        "cache_dir = \"" +
            (folder.path() / "cache").string() + "\"\n" + format_keys,
        "test.toml");
    return keep_library_alive(plugin.factory->create(config, context), plugin.factory);
  };
  const std::string gsm8k = "dataset = \"" + data.string() +
                            "\"\ndataset_format = \"gsm8k\"\ntest_fraction = 0.25\npartition = "
                            "\"iid\"\n";
  auto trainer = make(gsm8k, client(0, 2));
  // 15 of 20 records train, shared by two clients.
  CHECK(trainer->num_train_examples() >= 7);
  CHECK(trainer->num_train_examples() <= 8);
  auto server = make(gsm8k, ModelContext{ModelContext::Role::kServer, -1, 2, 5, run.string()});
  const EvalReport first = server->evaluate();
  CHECK(first.num_examples == 5);
  CHECK(first.metrics.count("exact_match") == 1);
  CHECK(first.metrics.at("perplexity") == Approx(std::exp(first.loss)));
  server->evaluate();
  std::ifstream file(run / "generations.jsonl");
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(file, line);) rows.push_back(nlohmann::json::parse(line));
  REQUIRE(rows.size() == 6);  // 3 samples, two evaluations
  CHECK(rows[0]["evaluation"] == 1);
  CHECK(rows[5]["evaluation"] == 2);
  CHECK(rows[0]["prompt"].get<std::string>().rfind("Q: ", 0) == 0);
  CHECK(rows[0]["reference"].get<std::string>().find("####") != std::string::npos);

  // Dolly-format data: loss and perplexity, no exact match; a client writes nothing.
  const auto dolly = folder.write("dolly.jsonl", dolly_lines(3));
  auto dolly_server = make("dataset = \"" + dolly.string() + "\"\ndataset_format = \"dolly\"\n",
                           ModelContext{ModelContext::Role::kServer, -1, 2, 5, {}});
  const EvalReport report = dolly_server->evaluate();
  CHECK(report.metrics.count("exact_match") == 0);
  CHECK(report.metrics.count("perplexity") == 1);
}
