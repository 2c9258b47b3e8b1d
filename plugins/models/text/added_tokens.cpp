#include "added_tokens.hpp"

#include <algorithm>

#include "utf8.hpp"

namespace lorafed::text {
namespace {

// The start of the character that ends at `end` (valid UTF-8).
std::size_t previous_character_start(std::string_view text, std::size_t end) {
  std::size_t begin = end - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0U) == 0x80U) --begin;
  return begin;
}

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(const std::vector<AddedToken>& tokens)
    : word_character_(std::make_shared<Regex>(R"(\A\w\z)")),
      space_character_(std::make_shared<Regex>(R"(\A\s\z)")) {
  for (const AddedToken& token : tokens) {
    if (!token.content.empty()) tokens_.push_back(token);
  }
  for (std::size_t index = 0; index < tokens_.size(); ++index) {
    by_first_byte_[static_cast<unsigned char>(tokens_[index].content[0])].push_back(index);
  }
  for (auto& candidates : by_first_byte_) {
    // Stable: of two tokens with the same content, the first listed wins.
    std::stable_sort(candidates.begin(), candidates.end(), [this](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

std::optional<AddedTokenSplitter::Match> AddedTokenSplitter::find_from(std::string_view text,
                                                                       std::size_t start) const {
  for (std::size_t begin = start; begin < text.size(); ++begin) {
    for (const std::size_t index : by_first_byte_[static_cast<unsigned char>(text[begin])]) {
      const AddedToken& token = tokens_[index];
      if (text.compare(begin, token.content.size(), token.content) == 0) {
        return Match{begin, begin + token.content.size(), &token};
      }
    }
  }
  return std::nullopt;
}

bool AddedTokenSplitter::stands_alone(std::string_view text, const Match& match) const {
  bool word_before = false;
  if (match.begin > 0) {
    const std::size_t before = previous_character_start(text, match.begin);
    word_before =
        word_character_->find_first(text.substr(before, match.begin - before)).has_value();
  }
  bool word_after = false;
  if (match.end < text.size()) {
    const std::string_view after = text.substr(match.end, utf8_length_at(text, match.end));
    word_after = word_character_->find_first(after).has_value();
  }
  return !word_before && !word_after;
}

std::size_t AddedTokenSplitter::spaces_before(std::string_view text, std::size_t end) const {
  while (end > 0) {
    const std::size_t begin = previous_character_start(text, end);
    if (!space_character_->find_first(text.substr(begin, end - begin))) break;
    end = begin;
  }
  return end;
}

std::size_t AddedTokenSplitter::spaces_after(std::string_view text, std::size_t begin) const {
  while (begin < text.size()) {
    const std::size_t length = utf8_length_at(text, begin);
    if (!space_character_->find_first(text.substr(begin, length))) break;
    begin += length;
  }
  return begin;
}

std::vector<TextSegment> AddedTokenSplitter::split(std::string_view text) const {
  std::vector<TextSegment> segments;
  std::size_t plain_start = 0;
  std::size_t search_from = 0;
  while (const auto found = find_from(text, search_from)) {
    search_from = found->end;
    if (found->token->single_word && !stands_alone(text, *found)) continue;
    std::size_t begin = found->begin;
    std::size_t end = found->end;
    // Whitespace an earlier token already took stays with it.
    if (found->token->lstrip) begin = std::max(spaces_before(text, begin), plain_start);
    if (found->token->rstrip) end = spaces_after(text, end);
    if (plain_start < begin) {
      segments.push_back({text.substr(plain_start, begin - plain_start), std::nullopt});
    }
    segments.push_back({text.substr(begin, end - begin), found->token->id});
    plain_start = end;
    search_from = std::max(search_from, end);
  }
  if (plain_start < text.size()) segments.push_back({text.substr(plain_start), std::nullopt});
  return segments;
}

}  // namespace lorafed::text
