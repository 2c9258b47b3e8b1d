#include "pre_tokenizer.hpp"

#include <algorithm>

#include "byte_alphabet.hpp"
#include "lorafed/error.hpp"

namespace lorafed::text {
namespace {

struct Piece {
  TextSpan span;
  bool is_match;
};

// The text as alternating stretches, as the tokenizers crate's Pattern::find_matches gives them.
std::vector<Piece> cover(std::string_view text, const std::vector<TextSpan>& matches, bool invert) {
  std::vector<Piece> pieces;
  std::size_t previous_end = 0;
  for (const TextSpan& match : matches) {
    if (previous_end != match.begin) pieces.push_back({{previous_end, match.begin}, invert});
    pieces.push_back({match, !invert});
    previous_end = match.end;
  }
  if (previous_end != text.size()) pieces.push_back({{previous_end, text.size()}, invert});
  return pieces;
}

std::vector<TextSpan> apply_behavior(const std::vector<Piece>& pieces, SplitBehavior behavior) {
  std::vector<TextSpan> spans;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Piece& piece : pieces) spans.push_back(piece.span);
      break;
    case SplitBehavior::removed:
      for (const Piece& piece : pieces) {
        if (!piece.is_match) spans.push_back(piece.span);
      }
      break;
    case SplitBehavior::contiguous:
      for (const Piece& piece : pieces) {
        if (piece.is_match == previous_match && !spans.empty()) {
          spans.back().end = piece.span.end;
        } else {
          spans.push_back(piece.span);
        }
        previous_match = piece.is_match;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const Piece& piece : pieces) {
        if (piece.is_match && !previous_match && !spans.empty()) {
          spans.back().end = piece.span.end;
        } else {
          spans.push_back(piece.span);
        }
        previous_match = piece.is_match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto piece = pieces.rbegin(); piece != pieces.rend(); ++piece) {
        if (piece->is_match && !previous_match && !spans.empty()) {
          spans.back().begin = piece->span.begin;
        } else {
          spans.push_back(piece->span);
        }
        previous_match = piece->is_match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
  }
  return spans;
}

SplitBehavior read_behavior(const JsonFile& file, const nlohmann::json& node,
                            const std::string& where) {
  const std::string name = file.string_value(node, where);
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  file.fail(where, "unknown split behavior \"" + name +
                       "\" (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

std::shared_ptr<const Regex> read_pattern(const JsonFile& file, const nlohmann::json& node,
                                          const std::string& where) {
  file.require_object(node, where);
  std::string pattern;
  if (const auto regex = file.optional_string(node, "Regex", where)) {
    pattern = *regex;
  } else if (const auto literal = file.optional_string(node, "String", where)) {
    pattern = Regex::escape(*literal);
  } else {
    file.fail(where, "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  try {
    return std::make_shared<const Regex>(pattern);
  } catch (const FormatError& error) {
    file.fail(where, error.what());
  }
}

std::string to_byte_symbols(std::string_view piece) {
  const auto& symbols = byte_symbols();
  std::string mapped;
  mapped.reserve(piece.size() * 2);
  for (const char byte : piece) mapped += symbols[static_cast<unsigned char>(byte)];
  return mapped;
}

}  // namespace

std::vector<std::string_view> split_by_matches(std::string_view text,
                                               const std::vector<TextSpan>& matches,
                                               SplitBehavior behavior, bool invert) {
  std::vector<std::string_view> pieces;
  for (const TextSpan& span : apply_behavior(cover(text, matches, invert), behavior)) {
    if (span.end > span.begin) pieces.push_back(text.substr(span.begin, span.end - span.begin));
  }
  return pieces;
}

const Regex& gpt2_pattern() {
  static const Regex pattern(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return pattern;
}

void PreTokenizer::read_step(const JsonFile& file, const nlohmann::json& node,
                             const std::string& where, std::vector<Step>& steps) {
  const std::string type =
      file.string_value(file.member(node, "type", where), field_path(where, "type"));
  if (type == "Sequence") {
    const std::string list_path = field_path(where, "pretokenizers");
    const nlohmann::json& list = file.member(node, "pretokenizers", where);
    file.require_array(list, list_path);
    for (std::size_t index = 0; index < list.size(); ++index) {
      read_step(file, list[index], element_path(list_path, index), steps);
    }
  } else if (type == "ByteLevel") {
    // The tokenizers crate's defaults for absent fields.
    steps.emplace_back(ByteLevelStep{file.bool_or(node, "add_prefix_space", true, where),
                                     file.bool_or(node, "use_regex", true, where)});
  } else if (type == "Split") {
    steps.emplace_back(SplitStep{
        read_pattern(file, file.member(node, "pattern", where), field_path(where, "pattern")),
        read_behavior(file, file.member(node, "behavior", where), field_path(where, "behavior")),
        file.bool_or(node, "invert", false, where)});
  } else {
    file.fail(field_path(where, "type"),
              "the pre-tokenizer \"" + type +
                  "\" is not supported (lorafed reads ByteLevel, Split and Sequence of these)");
  }
}

PreTokenizer PreTokenizer::from_json(const JsonFile& file, const nlohmann::json* node,
                                     const std::string& where) {
  PreTokenizer pre_tokenizer;
  if (node != nullptr) read_step(file, *node, where, pre_tokenizer.steps_);
  return pre_tokenizer;
}

std::vector<std::string> PreTokenizer::apply(std::string_view text) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.emplace_back(text);
  for (const Step& step : steps_) {
    std::vector<std::string> next;
    if (const auto* byte_level = std::get_if<ByteLevelStep>(&step)) {
      for (std::string& piece : pieces) {
        if (byte_level->add_prefix_space && piece.front() != ' ') piece.insert(0, 1, ' ');
        if (!byte_level->use_regex) {
          next.push_back(to_byte_symbols(piece));
          continue;
        }
        const auto parts =
            split_by_matches(piece, gpt2_pattern().find_all(piece), SplitBehavior::isolated, false);
        for (const std::string_view part : parts) next.push_back(to_byte_symbols(part));
      }
    } else {
      const auto& split = std::get<SplitStep>(step);
      for (const std::string& piece : pieces) {
        const auto parts =
            split_by_matches(piece, split.pattern->find_all(piece), split.behavior, split.invert);
        next.insert(next.end(), parts.begin(), parts.end());
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace lorafed::text
