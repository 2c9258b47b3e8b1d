#pragma once
// Added tokens (tokenizer.json's "added_tokens": special tokens such as
// <|endoftext|> and any tokens added after training) are found in the text
// before anything else and become their ids whole. Matching follows the
// tokenizers crate: leftmost first, longest among those starting there;
// single_word ones only between non-word characters; lstrip / rstrip ones
// swallow the whitespace on that side.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "regex.hpp"

namespace lorafed::text {

struct AddedToken {
  std::int64_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  // Matched in the normalized text (else in the text as given).
  bool normalized = true;
  bool special = false;
};

struct TextSegment {
  std::string_view text;
  std::optional<std::int64_t> token_id;  // set: an added token, which covers `text`
};

class AddedTokenSplitter {
 public:
  // Tokens with empty content are never matched.
  explicit AddedTokenSplitter(const std::vector<AddedToken>& tokens);

  bool empty() const { return tokens_.empty(); }

  // The text cut into plain stretches and added tokens, in order, covering all of it.
  std::vector<TextSegment> split(std::string_view text) const;

 private:
  struct Match {
    std::size_t begin;
    std::size_t end;
    const AddedToken* token;
  };
  std::optional<Match> find_from(std::string_view text, std::size_t start) const;
  bool stands_alone(std::string_view text, const Match& match) const;
  // Where the whitespace ending text[0, end) begins / the whitespace starting at text[begin] ends.
  std::size_t spaces_before(std::string_view text, std::size_t end) const;
  std::size_t spaces_after(std::string_view text, std::size_t begin) const;

  std::vector<AddedToken> tokens_;
  // Indices into tokens_ by their first byte, longest content first.
  std::array<std::vector<std::size_t>, 256> by_first_byte_;
  // One character that is a word character (\w) / whitespace (\s), by Unicode.
  std::shared_ptr<const Regex> word_character_;
  std::shared_ptr<const Regex> space_character_;
};

}  // namespace lorafed::text
