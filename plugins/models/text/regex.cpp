#include "regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lorafed/error.hpp"
#include "utf8.hpp"

namespace lorafed::text {
namespace {

std::string pcre2_message(int error_code) {
  std::string message(256, '\0');
  const int length = pcre2_get_error_message(
      error_code, reinterpret_cast<PCRE2_UCHAR*>(message.data()), message.size());
  message.resize(length < 0 ? 0 : static_cast<std::size_t>(length));
  return message;
}

struct MatchData {
  explicit MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* data;
};

}  // namespace

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }

  // The first match at or after start, if any.
  std::optional<TextSpan> search(std::string_view text, std::size_t start, MatchData& match,
                                 const std::string& pattern) const {
    // The text was checked to be UTF-8 once, by the caller.
    const int result = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                                   start, PCRE2_NO_UTF_CHECK, match.data, nullptr);
    if (result == PCRE2_ERROR_NOMATCH) return std::nullopt;
    if (result < 0) {
      throw Error("the tokenizer's pattern '" + pattern + "' failed on a text of " +
                  std::to_string(text.size()) + " bytes: " + pcre2_message(result) +
                  "; split the text into smaller pieces");
    }
    const PCRE2_SIZE* offsets = pcre2_get_ovector_pointer(match.data);
    return TextSpan{offsets[0], offsets[1]};
  }
};

Regex::Regex(std::string_view pattern)
    : compiled_(std::make_unique<Compiled>()), pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (compiled_->code == nullptr) {
    throw FormatError("the pattern '" + pattern_ + "' does not compile (PCRE2, at offset " +
                      std::to_string(error_offset) + "): " + pcre2_message(error_code));
  }
}

Regex::~Regex() = default;

std::string Regex::escape(std::string_view literal) {
  // \Q...\E quotes everything but a literal "\E", which is split around.
  std::string pattern = "\\Q";
  for (std::size_t i = 0; i < literal.size(); ++i) {
    if (literal.compare(i, 2, "\\E") == 0) {
      pattern += "\\E\\\\\\QE";
      ++i;
    } else {
      pattern.push_back(literal[i]);
    }
  }
  pattern += "\\E";
  return pattern;
}

std::vector<TextSpan> Regex::find_all(std::string_view text) const {
  MatchData match(compiled_->code);
  std::vector<TextSpan> matches;
  std::size_t start = 0;
  std::optional<std::size_t> last_match_end;
  while (start <= text.size()) {
    const auto found = compiled_->search(text, start, match, pattern_);
    if (!found) break;
    if (found->begin == found->end && last_match_end == found->end) {
      if (start >= text.size()) break;
      start += utf8_length_at(text, start);
      continue;
    }
    matches.push_back(*found);
    start = found->end;
    last_match_end = found->end;
  }
  return matches;
}

std::optional<TextSpan> Regex::find_first(std::string_view text) const {
  MatchData match(compiled_->code);
  return compiled_->search(text, 0, match, pattern_);
}

}  // namespace lorafed::text
