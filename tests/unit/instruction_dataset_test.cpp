// Instruction datasets from local files (plugins/models/text/README.md,
// "Instruction datasets"): each published format's loader, the refusals
// that name file and line, the prompt templates and GSM8K's final-number
// extraction, on worked examples.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "final_number.hpp"
#include "instruction_records.hpp"
#include "lorafed/error.hpp"
#include "prompt_template.hpp"
#include "unit/temp_folder.hpp"

using Catch::Matchers::Contains;
using lorafed::ConfigError;
using lorafed::FormatError;
using lorafed::test::TempFolder;
using namespace lorafed::text;

TEST_CASE("dolly records are read from JSON Lines, every field in place", "[instruct]") {
  TempFolder folder("dolly-jsonl");
  const auto path = folder.write(
      "dolly.jsonl",
      R"({"instruction": "When did Virgin Australia start operating?", "context": "Virgin Australia commenced services on 31 August 2000.", "response": "On 31 August 2000.", "category": "closed_qa"})"
      "\n\n"
      R"({"instruction": "Name a primary colour.", "context": "", "response": "Red", "category": "open_qa", "extra": 1})"
      "\n"
      R"({"category": "brainstorming", "instruction": "Ideas for a rainy day?", "response": "Read.\nBake.", "context": null})"
      "\n");
  const auto records = read_instruction_records(path, parse_instruction_format("dolly"));
  REQUIRE(records.size() == 3);
  CHECK(records[0].instruction == "When did Virgin Australia start operating?");
  CHECK(records[0].input == "Virgin Australia commenced services on 31 August 2000.");
  CHECK(records[0].response == "On 31 August 2000.");
  CHECK(records[0].category == "closed_qa");
  CHECK(records[0].line == 1);
  CHECK(records[1].line == 3);  // the blank line is counted, not a record
  CHECK(records[1].input.empty());
  CHECK(records[2].response == "Read.\nBake.");
  CHECK(records[2].input.empty());  // null: no context
  CHECK(records[2].source == path.string());
}

TEST_CASE("gsm8k and alpaca records are read from a JSON array", "[instruct]") {
  TempFolder folder("gsm8k-json");
  const auto gsm8k = folder.write("gsm8k.json", R"([
  {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
   "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"},
  {"question": "Weng earns $12 an hour. How much did she earn for 50 minutes?", "answer": "12/60 = $<<12/60=0.2>>0.2 per minute.\n#### 10"}
])");
  const auto problems = read_instruction_records(gsm8k, parse_instruction_format("gsm8k"));
  REQUIRE(problems.size() == 2);
  // The same array after a byte order mark, with Windows line ends.
  std::string windows = "\xEF\xBB\xBF" + lorafed::test::read_text(gsm8k);
  for (std::size_t at = windows.find('\n'); at != std::string::npos;
       at = windows.find('\n', at + 2))
    windows.insert(at, "\r");
  const auto marked = read_instruction_records(folder.write("gsm8k-bom.json", windows),
                                               parse_instruction_format("gsm8k"));
  REQUIRE(marked.size() == 2);
  CHECK(marked[1].line == 4);
  CHECK(marked[1].instruction == problems[1].instruction);
  CHECK(problems[0].instruction.rfind("Natalia sold clips", 0) == 0);
  CHECK(problems[0].response.substr(problems[0].response.size() - 5) == "## 72");
  CHECK(problems[0].category.empty());
  CHECK(problems[0].line == 2);
  CHECK(problems[1].line == 4);

  const auto alpaca = folder.write(
      "code_alpaca.json",
      R"json([{"instruction": "Add two numbers.", "input": "a = 1, b = 2", "output": "a + b"},
{"instruction": "Print hello.", "input": "", "output": "print('hello')"}])json");
  for (const char* name : {"alpaca", "codealpaca"}) {
    const auto records = read_instruction_records(alpaca, parse_instruction_format(name));
    REQUIRE(records.size() == 2);
    CHECK(records[0].input == "a = 1, b = 2");
    CHECK(records[0].response == "a + b");
    CHECK(records[1].line == 2);
    CHECK(records[1].input.empty());
  }
}

TEST_CASE("a malformed record is refused, naming its file and line", "[instruct]") {
  TempFolder folder("instruct-bad");
  const auto dolly = parse_instruction_format("dolly");
  const std::string good =
      R"({"instruction": "a", "context": "", "response": "b", "category": "c"})";
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {good + "\n" + good + "\n{\"instruction\": \"a\", \"response\": \n", ":3: not a JSON object"},
      {good + "\n{\"instruction\": \"a\", \"context\": \"\", \"category\": \"c\"}\n",
       ":2: the record has no \"response\""},
      {good + "\n" + R"({"instruction": 5, "context": "", "response": "b", "category": "c"})",
       ":2: \"instruction\" must be a string, found number"},
      {R"({"instruction": "a", "context": "", "response": "  ", "category": "c"})",
       ":1: \"response\" is empty"},
      {"[\"not an object\"]", ":1: expected a JSON object, found string"},
      {"[\n" + good + ",\n\n  {\"instruction\": \"a\", \"response\": \"b\"}\n]",
       ":4: the record has no \"category\""},
      {"[\n" + good + ",\n  {\"instruction\": \"a\",,}\n]", ":3: not valid JSON"},
      {"\n \n", "holds no records"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto path = folder.write("bad-" + std::to_string(i) + ".jsonl", cases[i].text);
    INFO(cases[i].text);
    CHECK_THROWS_AS(read_instruction_records(path, dolly), FormatError);
    CHECK_THROWS_WITH(read_instruction_records(path, dolly),
                      Contains(path.string()) && Contains(cases[i].message));
  }
  const auto no_mark =
      folder.write("gsm8k.jsonl", R"({"question": "2 + 2?", "answer": "2 + 2 = 4"})"
                                  "\n");
  CHECK_THROWS_WITH(read_instruction_records(no_mark, parse_instruction_format("gsm8k")),
                    Contains("gsm8k.jsonl:1: \"answer\" does not end in \"#### <number>\""));
  CHECK_THROWS_WITH(read_instruction_records(folder.path() / "absent.jsonl", dolly),
                    Contains("absent.jsonl: cannot be read"));
  CHECK_THROWS_AS(parse_instruction_format("sharegpt"), ConfigError);
}

TEST_CASE("prompt templates: Alpaca's two prompts, qa, and one's own", "[instruct]") {
  InstructionRecord with_input;
  with_input.instruction = "Add the numbers.";
  with_input.input = "3 and 4";
  with_input.source = "data.jsonl";
  with_input.line = 7;
  InstructionRecord plain;
  plain.instruction = "Name a colour.";

  const PromptTemplate alpaca = PromptTemplate::parse("alpaca");
  CHECK(alpaca.render(with_input) ==
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAdd the numbers.\n\n### Input:\n3 and 4\n\n### Response:\n");
  CHECK(alpaca.render(plain) ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n");

  const PromptTemplate qa = PromptTemplate::parse("qa");
  CHECK(qa.render(plain) == "Q: Name a colour.\nA: ");
  CHECK(qa.render(with_input) == "3 and 4\nQ: Add the numbers.\nA: ");

  const PromptTemplate own = PromptTemplate::parse("<{{task}}> {instruction} [{input}] ->");
  CHECK(own.render(with_input) == "<{task}> Add the numbers. [3 and 4] ->");
  CHECK(own.render(plain) == "<{task}> Name a colour. [] ->");

  const PromptTemplate no_input = PromptTemplate::parse("User: {instruction}\nBot:");
  CHECK(no_input.render(plain) == "User: Name a colour.\nBot:");
  CHECK_THROWS_WITH(no_input.render(with_input),
                    Contains("data.jsonl:7: the record has an input but prompt_template has no "
                             "{input}"));
  CHECK_THROWS_WITH(PromptTemplate::parse("{instruction} {answer}"),
                    Contains("unknown placeholder {answer}"));
  CHECK_THROWS_WITH(PromptTemplate::parse("{instruction} {input"),
                    Contains("unknown placeholder {input"));
  CHECK_THROWS_AS(PromptTemplate::parse("vicuna"), ConfigError);
}

TEST_CASE("gsm8k answers are scored by their final number", "[instruct]") {
  // The reference: the number after the last "####".
  CHECK(gsm8k_reference_number("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72") == "72");
  CHECK(gsm8k_reference_number("#### 1,000") == "1000");
  CHECK(gsm8k_reference_number("so -3 left\n#### -3") == "-3");
  CHECK(gsm8k_reference_number("#### 5.50") == "5.5");
  CHECK(gsm8k_reference_number("#### 18.0") == "18");
  CHECK(gsm8k_reference_number("#### $018") == "18");
  CHECK(gsm8k_reference_number("24 + 48 = 72") == std::nullopt);
  CHECK(gsm8k_reference_number("#### seventy-two") == std::nullopt);
  // A generation: its "####" number where it writes one, else its last number.
  CHECK(final_number("She sold 24 in May, so 48 + 24 = 72 in all.") == "72");
  CHECK(final_number("48 + 24 = 72\n#### 72 clips") == "72");
  CHECK(final_number("#### 7\nand 9 more") == "7");
  CHECK(final_number("The answer is $1,234.00.") == "1234");
  CHECK(final_number("5-3=2") == "2");
  CHECK(final_number("It is -4") == "-4");
  CHECK(final_number("3, 4") == "4");
  CHECK(final_number("7.") == "7");
  CHECK(final_number("no number here") == std::nullopt);
  CHECK(normalise_number("-0.00") == "0");
  CHECK(normalise_number("+1,500") == "1500");
}
