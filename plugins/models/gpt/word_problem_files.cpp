// lorafed-word-problems: writes the gpt backend's arithmetic word problems
// as an instruction dataset file in a published format, so the dataset
// loaders run end to end on data made here (README.md, "Instruction
// datasets"):
//
//   gsm8k  {"question", "answer"}: the working, then "#### <number>"
//   dolly  {"instruction", "context", "response", "category"}: the number,
//          the task type as the category
//
//   lorafed-word-problems --format gsm8k --out data/word-problems-gsm8k.jsonl
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "word_problems.hpp"

namespace {

using namespace lorafed;

nlohmann::json record(const gpt::WorkedProblem& worked, const std::string& format) {
  const gpt::WordProblem& problem = worked.problem;
  if (format == "gsm8k") {
    return {{"question", worked.question}, {"answer", worked.working + "\n#### " + problem.answer}};
  }
  return {{"instruction", worked.question},
          {"context", ""},
          {"response", problem.answer},
          {"category", gpt::task_types().at(static_cast<std::size_t>(problem.type))}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes arithmetic word problems as a GSM8K- or Dolly-format JSON Lines file"};
  std::string format;
  std::filesystem::path out;
  std::int64_t per_task = 200;
  std::int64_t max_operand = 9;
  std::uint64_t seed = 0;
  std::vector<std::string> tasks = gpt::task_types();
  app.add_option("--format", format, "gsm8k or dolly")
      ->required()
      ->check(CLI::IsMember({"gsm8k", "dolly"}));
  app.add_option("--out", out, "the file to write (JSON Lines)")->required();
  app.add_option("--per-task", per_task, "problems of each task type")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000}));
  app.add_option("--max-operand", max_operand, "largest operand")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1000000}));
  app.add_option("--seed", seed, "the problems drawn")->capture_default_str();
  app.add_option("--tasks", tasks, "task types (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(gpt::task_types()));
  CLI11_PARSE(app, argc, argv);
  try {
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
    std::ofstream file(out);
    std::int64_t written = 0;
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const auto type = static_cast<std::int64_t>(
          std::find(gpt::task_types().begin(), gpt::task_types().end(), tasks[t]) -
          gpt::task_types().begin());
      for (const gpt::WorkedProblem& problem :
           gpt::generate_worked_problems(type, per_task, max_operand,
                                         derive_seed(seed, {static_cast<std::uint64_t>(type)}))) {
        file << record(problem, format).dump() << '\n';
        ++written;
      }
    }
    if (!file.flush()) throw Error("cannot write " + out.string());
    std::cout << "wrote " << written << " " << format << " records to " << out.string() << "\n";
  } catch (const std::exception& error) {
    std::cerr << "lorafed-word-problems: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
