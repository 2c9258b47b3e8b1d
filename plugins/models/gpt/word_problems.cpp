#include "word_problems.hpp"

#include <random>
#include <unordered_set>

#include "lorafed/error.hpp"

namespace lorafed::gpt {
namespace {

const std::vector<std::string> kNames = {"Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gia", "Hal"};
const std::vector<std::string> kItems = {"apples", "pens",  "books",  "coins",
                                         "eggs",   "cards", "shells", "stamps"};

std::int64_t uniform(std::mt19937_64& rng, std::int64_t low, std::int64_t high) {
  return std::uniform_int_distribution<std::int64_t>(low, high)(rng);
}

const std::string& pick(std::mt19937_64& rng, const std::vector<std::string>& pool) {
  return pool[static_cast<std::size_t>(
      uniform(rng, 0, static_cast<std::int64_t>(pool.size()) - 1))];
}

struct Drawn {
  std::string question;
  std::int64_t answer;
  std::string working;
};

std::string equation(std::int64_t a, const char* op, std::int64_t b, std::int64_t result) {
  return std::to_string(a) + " " + op + " " + std::to_string(b) + " = " + std::to_string(result);
}

// One random problem of `type`: its question, its answer and the working.
Drawn draw(std::int64_t type, std::int64_t max_operand, std::mt19937_64& rng) {
  const std::string& name = pick(rng, kNames);
  const std::string& items = pick(rng, kItems);
  const std::string n = " " + items;
  const std::int64_t max_factor = std::min<std::int64_t>(9, max_operand);
  switch (type) {
    case 0: {  // add
      const std::int64_t a = uniform(rng, 1, max_operand), b = uniform(rng, 1, max_operand);
      return {name + " has " + std::to_string(a) + n + " and gets " + std::to_string(b) +
                  " more. How many" + n + " now?",
              a + b, equation(a, "+", b, a + b)};
    }
    case 1: {  // subtract
      const std::int64_t a = uniform(rng, 1, max_operand), b = uniform(rng, 1, a);
      return {name + " has " + std::to_string(a) + n + " and gives away " + std::to_string(b) +
                  ". How many" + n + " are left?",
              a - b, equation(a, "-", b, a - b)};
    }
    case 2: {  // multiply
      const std::int64_t a = uniform(rng, 2, max_factor), b = uniform(rng, 2, max_factor);
      return {name + " buys " + std::to_string(a) + " bags of " + std::to_string(b) + n +
                  ". How many" + n + " in all?",
              a * b, equation(a, "*", b, a * b)};
    }
    case 3: {  // share
      const std::int64_t a = uniform(rng, 2, max_factor), b = uniform(rng, 2, max_factor);
      return {name + " shares " + std::to_string(a * b) + n + " among " + std::to_string(a) +
                  " friends. How many each?",
              b, equation(a * b, "/", a, b)};
    }
    case 4: {  // two_step
      const std::int64_t a = uniform(rng, 1, max_operand), b = uniform(rng, 1, max_operand);
      const std::int64_t c = uniform(rng, 1, a + b);
      return {name + " has " + std::to_string(a) + n + ", gets " + std::to_string(b) +
                  " more, then gives away " + std::to_string(c) + ". How many left?",
              a + b - c, equation(a, "+", b, a + b) + "\n" + equation(a + b, "-", c, a + b - c)};
    }
    case 5: {  // compare
      const std::string& other = pick(rng, kNames);
      const std::int64_t b = uniform(rng, 1, max_operand - 1), a = uniform(rng, b + 1, max_operand);
      return {name + " has " + std::to_string(a) + n + " and " +
                  (other == name ? std::string("Ida") : other) + " has " + std::to_string(b) +
                  ". How many more has " + name + "?",
              a - b, equation(a, "-", b, a - b)};
    }
    case 6: {  // recall: read one of two numbers back
      std::string other = pick(rng, kItems);
      if (other == items) other = items == kItems[0] ? kItems[1] : kItems[0];
      const std::int64_t a = uniform(rng, 1, max_operand), b = uniform(rng, 1, max_operand);
      return {name + " has " + std::to_string(a) + n + " and " + std::to_string(b) + " " + other +
                  ". How many" + n + "?",
              a, name + " has " + std::to_string(a) + n + "."};
    }
    default:
      throw Error("gpt model: no task type " + std::to_string(type));
  }
}

}  // namespace

const std::vector<std::string>& task_types() {
  static const std::vector<std::string> types = {"add",      "subtract", "multiply", "share",
                                                 "two_step", "compare",  "recall"};
  return types;
}

std::vector<WordProblem> generate_problems(std::int64_t type, std::int64_t count,
                                           std::int64_t max_operand, std::uint64_t seed,
                                           const std::vector<WordProblem>& exclude) {
  std::vector<WordProblem> problems;
  for (WorkedProblem& worked : generate_worked_problems(type, count, max_operand, seed, exclude))
    problems.push_back(std::move(worked.problem));
  return problems;
}

std::vector<WorkedProblem> generate_worked_problems(std::int64_t type, std::int64_t count,
                                                    std::int64_t max_operand, std::uint64_t seed,
                                                    const std::vector<WordProblem>& exclude) {
  if (max_operand < 2) throw ConfigError("gpt model: max_operand must be at least 2");
  std::unordered_set<std::string> seen;
  for (const WordProblem& problem : exclude) seen.insert(problem.prompt);
  std::mt19937_64 rng(seed);
  std::vector<WorkedProblem> problems;
  for (std::int64_t attempt = 0; static_cast<std::int64_t>(problems.size()) < count; ++attempt) {
    if (attempt > 50 * count + 1000) {
      throw ConfigError("gpt model: cannot draw " + std::to_string(count) + " distinct '" +
                        task_types().at(type) + "' problems with max_operand " +
                        std::to_string(max_operand) + "; ask for fewer or raise max_operand");
    }
    Drawn drawn = draw(type, max_operand, rng);
    std::string prompt = "Q: " + drawn.question + "\nA: ";
    if (!seen.insert(prompt).second) continue;
    problems.push_back(
        WorkedProblem{WordProblem{std::move(prompt), std::to_string(drawn.answer), type},
                      std::move(drawn.question), std::move(drawn.working)});
  }
  return problems;
}

}  // namespace lorafed::gpt
