#pragma once
// How an instruction record becomes the prompt a model reads (README.md,
// "Instruction datasets"). The response follows the prompt directly.

#include <string>

#include "instruction_records.hpp"

namespace lorafed::text {

class PromptTemplate {
 public:
  // "alpaca" (Alpaca's two prompts, with and without an input), "qa"
  // ("Q: {instruction}\nA: ", the input on the line before when there is
  // one), or a template of one's own: text holding {instruction} and
  // optionally {input}, with "{{" and "}}" for literal braces. Any other
  // {name} is a ConfigError.
  static PromptTemplate parse(const std::string& spec);

  // The prompt for `record`. A record with an input under a template of
  // one's own without {input} is a FormatError ("<record.source>:<line>: ...").
  std::string render(const InstructionRecord& record) const;

 private:
  PromptTemplate(std::string with_input, std::string without_input)
      : with_input_(std::move(with_input)), without_input_(std::move(without_input)) {}

  std::string with_input_;  // empty: the template has no {input}
  std::string without_input_;
};

}  // namespace lorafed::text
