#pragma once
// A compiled PCRE2 pattern over UTF-8 text, with Unicode properties (\p{L},
// \s and \w by Unicode), as the Hugging Face tokenizers' Oniguruma patterns
// expect.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorafed::text {

struct TextSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
  friend bool operator==(const TextSpan&, const TextSpan&) = default;
};

class Regex {
 public:
  // Throws lorafed::FormatError saying where the pattern stops compiling.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // A pattern matching `literal` exactly (Split's {"String": ...}).
  static std::string escape(std::string_view literal);

  // Successive leftmost matches in valid UTF-8 text, as the tokenizers crate
  // iterates them: each search starts where the last match ended, and an
  // empty match right where the previous one ended is skipped by moving on
  // one character. Throws lorafed::Error when PCRE2 gives up (its match limit).
  std::vector<TextSpan> find_all(std::string_view text) const;

  // The leftmost match in valid UTF-8 text, if any.
  std::optional<TextSpan> find_first(std::string_view text) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
  std::string pattern_;
};

}  // namespace lorafed::text
