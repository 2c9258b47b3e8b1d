#pragma once
// Instruction-tuning datasets read from local files in their published
// formats (README.md, "Instruction datasets"): Dolly-15k, GSM8K, Alpaca and
// CodeAlpaca, as a JSON array or as JSON Lines. Every record is checked; a
// malformed one is a lorafed::FormatError naming the file and the line it
// starts on, never skipped.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lorafed::text {

enum class InstructionFormat {
  kDolly,   // instruction, context, response, category
  kGsm8k,   // question, answer (ending in "#### <number>")
  kAlpaca,  // instruction, input, output (Alpaca and CodeAlpaca)
};

// "dolly", "gsm8k", "alpaca" or "codealpaca"; anything else is a ConfigError.
InstructionFormat parse_instruction_format(const std::string& name);

// One example, in the same fields whatever its format.
struct InstructionRecord {
  std::string instruction;  // Dolly/Alpaca instruction, GSM8K question
  std::string input;        // Dolly context, Alpaca input; may be empty
  std::string response;     // Dolly response, Alpaca output, GSM8K answer
  std::string category;     // Dolly category; empty in the other formats
  std::string source;       // the file it was read from
  std::int64_t line = 0;    // 1-based line of the file the record starts on
};

// The records of `path` in file order. A file whose first non-blank
// character is '[' is a JSON array of objects; any other is JSON Lines (one
// object per line; blank lines are allowed). Fields the format does not
// name are ignored; a missing required field, a value of the wrong type, an
// empty instruction or response, or (GSM8K) an answer without "#### <number>"
// is refused. An empty file is refused too.
std::vector<InstructionRecord> read_instruction_records(const std::filesystem::path& path,
                                                        InstructionFormat format);

}  // namespace lorafed::text
