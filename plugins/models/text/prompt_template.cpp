#include "prompt_template.hpp"

#include "lorafed/error.hpp"

namespace lorafed::text {
namespace {

// Alpaca's prompts, as alpaca-lora trains them (a newline after
// "### Response:").
constexpr const char* kAlpacaInput =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
constexpr const char* kAlpacaNoInput =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";
constexpr const char* kQaInput = "{input}\nQ: {instruction}\nA: ";
constexpr const char* kQaNoInput = "Q: {instruction}\nA: ";

// Appends `pattern` with its placeholders filled from `record` to `out`
// (both null: only checks it). Returns whether {input} occurs.
bool substitute(const std::string& pattern, const InstructionRecord* record, std::string* out) {
  bool has_input = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      if (out) out->push_back(c);
      ++i;
      continue;
    }
    if (c == '{') {
      const std::size_t close = pattern.find('}', i);
      const std::string name =
          close == std::string::npos ? pattern.substr(i + 1) : pattern.substr(i + 1, close - i - 1);
      if (close == std::string::npos || (name != "instruction" && name != "input")) {
        throw ConfigError("prompt_template: unknown placeholder {" + name +
                          (close == std::string::npos ? "" : "}") +
                          " (use {instruction} and {input}, and {{ }} for braces)");
      }
      has_input = has_input || name == "input";
      if (out && record) out->append(name == "input" ? record->input : record->instruction);
      i = close;
      continue;
    }
    if (out) out->push_back(c);
  }
  return has_input;
}

}  // namespace

PromptTemplate PromptTemplate::parse(const std::string& spec) {
  if (spec == "alpaca") return PromptTemplate(kAlpacaInput, kAlpacaNoInput);
  if (spec == "qa") return PromptTemplate(kQaInput, kQaNoInput);
  if (spec.find("{instruction}") == std::string::npos) {
    throw ConfigError(
        "prompt_template must be \"alpaca\", \"qa\" or a template holding "
        "{instruction}, got \"" +
        spec + "\"");
  }
  const bool has_input = substitute(spec, nullptr, nullptr);
  return PromptTemplate(has_input ? spec : std::string(), spec);
}

std::string PromptTemplate::render(const InstructionRecord& record) const {
  const bool with_input = !record.input.empty();
  if (with_input && with_input_.empty()) {
    throw FormatError(record.source + ":" + std::to_string(record.line) +
                      ": the record has an input but prompt_template has no {input}");
  }
  std::string prompt;
  substitute(with_input ? with_input_ : without_input_, &record, &prompt);
  return prompt;
}

}  // namespace lorafed::text
