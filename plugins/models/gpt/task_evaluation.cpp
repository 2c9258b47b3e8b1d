#include "task_evaluation.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "answer_evaluation.hpp"
#include "final_number.hpp"
#include "lorafed/error.hpp"

namespace lorafed::gpt {

double final_number_match(const std::vector<WordProblem>& problems,
                          const std::vector<std::string>& generated) {
  if (problems.empty()) return 0;
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const auto reference = text::gsm8k_reference_number(problems[i].answer);
    const auto answer = text::final_number(generated.at(i));
    correct += reference && answer && *reference == *answer;
  }
  return static_cast<double>(correct) / static_cast<double>(problems.size());
}

void write_generations(const std::filesystem::path& file, std::int64_t evaluation,
                       const std::vector<WordProblem>& problems,
                       const std::vector<std::string>& generated) {
  std::ofstream out(file, std::ios::app);
  for (std::size_t i = 0; i < problems.size() && i < generated.size(); ++i) {
    const nlohmann::json line = {{"evaluation", evaluation},
                                 {"prompt", problems[i].prompt},
                                 {"reference", problems[i].answer},
                                 {"generated", generated[i]}};
    out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  if (!out) throw Error("cannot write generations to " + file.string());
}

EvalReport evaluate_task(const Logits& logits, const AnswerGenerator& generate,
                         const std::vector<WordProblem>& problems, const data::Examples& sequences,
                         const TaskEvaluation& how) {
  const TaskOptions& task = *how.task;
  EvalReport report;
  report.num_examples = static_cast<std::int64_t>(problems.size());
  if (problems.empty()) return report;
  report.loss = answer_loss(logits, sequences, how.batch_size);
  const TaskOptions::Scoring scoring = task.scoring();
  if (scoring != TaskOptions::Scoring::kExactAnswer)
    report.metrics["perplexity"] = std::exp(report.loss);

  // Generate for every problem where generations are scored, else for the samples only.
  const auto samples =
      std::min<std::size_t>(static_cast<std::size_t>(task.samples), problems.size());
  const bool first_line = scoring == TaskOptions::Scoring::kExactAnswer;
  std::vector<std::string> generated;
  if (scoring != TaskOptions::Scoring::kLossOnly) {
    generated = generate(problems, task.generation_length(), first_line);
  } else if (samples > 0) {
    generated = generate(std::vector<WordProblem>(problems.begin(), problems.begin() + samples),
                         task.generation_length(), first_line);
  }
  if (scoring == TaskOptions::Scoring::kExactAnswer) {
    report.metrics["exact_match"] = exact_match(problems, generated);
  } else if (scoring == TaskOptions::Scoring::kFinalNumber) {
    report.metrics["exact_match"] = final_number_match(problems, generated);
  }
  // write_generations writes one line per generation it is given.
  if (!how.generations_file.empty() && samples > 0) {
    write_generations(how.generations_file, how.evaluation, problems,
                      std::vector<std::string>(generated.begin(), generated.begin() + samples));
  }
  return report;
}

}  // namespace lorafed::gpt
