#pragma once
// tokenizer.json's "pre_tokenizer": how text is cut into the pieces BPE
// merges within. Supported: ByteLevel (GPT-2's regex split, the byte-to-
// unicode mapping), Split (a regex or a literal, with the tokenizers crate's
// five delimiter behaviours and `invert`) and Sequence of these.

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "json_fields.hpp"
#include "regex.hpp"

namespace lorafed::text {

// What Split does with what its pattern matches; for "the-final--countdown"
// split on "-": Removed "the" "final" "countdown"; Isolated "the" "-" "final"
// "-" "-" "countdown"; MergedWithPrevious "the-" "final-" "-" "countdown";
// MergedWithNext "the" "-final" "-" "-countdown"; Contiguous "the" "-"
// "final" "--" "countdown".
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// The pieces of text that `behavior` makes of the pattern's matches (with
// `invert`, of what lies between them), empty pieces left out.
std::vector<std::string_view> split_by_matches(std::string_view text,
                                               const std::vector<TextSpan>& matches,
                                               SplitBehavior behavior, bool invert);

// GPT-2's pre-tokenization pattern, which ByteLevel with use_regex applies.
const Regex& gpt2_pattern();

class PreTokenizer {
 public:
  // `node` may be null (no pre-tokenizer); anything unsupported is a FormatError naming it.
  static PreTokenizer from_json(const JsonFile& file, const nlohmann::json* node,
                                const std::string& where);

  // The pre-tokens of a stretch of (normalized) text, in the model's alphabet.
  std::vector<std::string> apply(std::string_view text) const;

 private:
  struct ByteLevelStep {
    bool add_prefix_space;
    bool use_regex;
  };
  struct SplitStep {
    std::shared_ptr<const Regex> pattern;
    SplitBehavior behavior;
    bool invert;
  };
  using Step = std::variant<ByteLevelStep, SplitStep>;

  static void read_step(const JsonFile& file, const nlohmann::json& node, const std::string& where,
                        std::vector<Step>& steps);

  std::vector<Step> steps_;
};

}  // namespace lorafed::text
