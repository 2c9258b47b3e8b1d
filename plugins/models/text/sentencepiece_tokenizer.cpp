#include "sentencepiece_tokenizer.hpp"

#include <algorithm>
#include <queue>

#include "added_tokens.hpp"
#include "lorafed/error.hpp"
#include "utf8.hpp"

namespace lorafed::text {
namespace {

// One symbol of the text being merged: a stretch of the normalized text,
// linked to its neighbours; merged-away symbols are left empty.
struct Symbol {
  std::string_view text;
  std::ptrdiff_t previous = -1;
  std::ptrdiff_t next = -1;
  bool frozen = false;  // a user-defined piece, never merged further
};

// Two neighbouring symbols whose concatenation is a piece.
struct Candidate {
  float score = 0.0F;
  std::ptrdiff_t left = 0;
  std::ptrdiff_t right = 0;
  std::size_t length = 0;  // of the concatenation: a stale candidate no longer has it
};

// SentencePiece's order: the highest score first, then the leftmost.
struct LowerPriority {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(
    const std::filesystem::path& path) {
  return std::make_unique<SentencePieceTokenizer>(read_sentencepiece_model(path));
}

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceModel model)
    : model_(std::move(model)) {
  std::vector<AddedToken> specials;
  byte_ids_.fill(-1);
  for (std::size_t index = 0; index < model_.pieces.size(); ++index) {
    const auto id = static_cast<std::int64_t>(index);
    const SentencePiece& piece = model_.pieces[index];
    ids_.emplace(piece.text, id);
    switch (piece.type) {
      case PieceType::kNormal:
        mergeable_.emplace(piece.text, id);
        break;
      case PieceType::kUserDefined:
        mergeable_.emplace(piece.text, id);
        user_defined_.push_back(piece.text);
        break;
      case PieceType::kUnknown:
        unknown_id_ = id;
        [[fallthrough]];
      case PieceType::kControl:
        specials.push_back(
            AddedToken{.id = id, .content = piece.text, .normalized = false, .special = true});
        break;
      case PieceType::kByte:
        byte_ids_[*byte_of_piece(piece.text)] = id;
        break;
      case PieceType::kUnused:
        break;  // refused when read
    }
  }
  std::sort(user_defined_.begin(), user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  special_pieces_ = std::make_unique<AddedTokenSplitter>(specials);
  const auto control = [&](const std::string& text) -> std::optional<std::int64_t> {
    const auto found = ids_.find(text);
    if (found == ids_.end() || model_.pieces[found->second].type != PieceType::kControl) {
      return std::nullopt;
    }
    return found->second;
  };
  set_bos_id(control(model_.bos_piece));
  set_eos_id(control(model_.eos_piece));
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

bool SentencePieceTokenizer::is_special(std::int64_t id) const {
  const PieceType type = model_.pieces[static_cast<std::size_t>(id)].type;
  return type == PieceType::kControl || type == PieceType::kUnknown;
}

// The longest user-defined piece text starts with, or 0.
std::size_t SentencePieceTokenizer::user_defined_length(std::string_view text) const {
  for (const std::string& piece : user_defined_) {
    if (text.starts_with(piece)) return piece.size();
  }
  return 0;
}

// SentencePiece's normalizer without a character table: a "▁" before the
// text, spaces written "▁", and (remove_extra_whitespaces) spaces dropped at
// both ends and collapsed in runs. User-defined pieces pass untouched.
std::string SentencePieceTokenizer::normalize(std::string_view text) const {
  const bool collapse = model_.remove_extra_whitespaces;
  const std::string_view space = model_.escape_whitespaces ? kSpaceSymbol : " ";
  if (collapse) {
    while (!text.empty() && text.front() == ' ' && user_defined_length(text) == 0) {
      text.remove_prefix(1);
    }
  }
  std::string normalized;
  if (text.empty()) return normalized;
  if (model_.add_dummy_prefix) normalized += space;
  bool after_space = collapse;
  while (!text.empty()) {
    const std::size_t defined = user_defined_length(text);
    const std::size_t length = defined > 0 ? defined : utf8_length_at(text, 0);
    std::string_view unit = text.substr(0, length);
    text.remove_prefix(length);
    if (after_space) {
      while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    }
    if (!unit.empty()) {
      for (const char byte : unit) {
        if (byte == ' ') {
          normalized += space;
        } else {
          normalized += byte;
        }
      }
      after_space = unit.back() == ' ';
    }
    if (!collapse) after_space = false;
  }
  if (collapse) {
    while (normalized.ends_with(space)) normalized.resize(normalized.size() - space.size());
  }
  return normalized;
}

// SentencePiece's BPE: the text's characters (and user-defined pieces) as
// symbols; the neighbouring pair whose concatenation is the best-scored
// piece merged, again and again. What stays unknown is written as byte
// pieces (byte fallback) or one unknown id per run.
void SentencePieceTokenizer::encode_plain(std::string_view text,
                                          std::vector<std::int64_t>& ids) const {
  const std::string normalized = normalize(text);
  const std::string_view rest_of(normalized);
  std::vector<Symbol> symbols;
  for (std::size_t offset = 0; offset < normalized.size();) {
    const std::string_view rest = rest_of.substr(offset);
    const std::size_t defined = user_defined_length(rest);
    const std::size_t length = defined > 0 ? defined : utf8_length_at(rest, 0);
    const auto index = static_cast<std::ptrdiff_t>(symbols.size());
    symbols.push_back(Symbol{.text = rest.substr(0, length),
                             .previous = index - 1,
                             .next = offset + length < normalized.size() ? index + 1 : -1,
                             .frozen = defined > 0});
    offset += length;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> agenda;
  const auto consider = [&](std::ptrdiff_t left, std::ptrdiff_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& a = symbols[static_cast<std::size_t>(left)];
    const Symbol& b = symbols[static_cast<std::size_t>(right)];
    if (a.frozen || b.frozen) return;
    // Neighbours are adjacent in `normalized`, so their concatenation is a view of it.
    const std::string_view joined(a.text.data(), a.text.size() + b.text.size());
    const auto found = mergeable_.find(joined);
    if (found == mergeable_.end()) return;
    agenda.push(Candidate{.score = model_.pieces[static_cast<std::size_t>(found->second)].score,
                          .left = left,
                          .right = right,
                          .length = joined.size()});
  };
  for (std::size_t i = 1; i < symbols.size(); ++i) {
    consider(static_cast<std::ptrdiff_t>(i) - 1, static_cast<std::ptrdiff_t>(i));
  }
  while (!agenda.empty()) {
    const Candidate best = agenda.top();
    agenda.pop();
    Symbol& left = symbols[static_cast<std::size_t>(best.left)];
    Symbol& right = symbols[static_cast<std::size_t>(best.right)];
    if (left.text.empty() || right.text.empty() ||
        left.text.size() + right.text.size() != best.length) {
      continue;  // one of them was merged since
    }
    left.text = std::string_view(left.text.data(), best.length);
    right.text = {};
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].previous = best.left;
    consider(left.previous, best.left);
    consider(best.left, left.next);
  }
  bool previous_unknown = false;
  for (std::ptrdiff_t index = symbols.empty() ? -1 : 0; index >= 0;
       index = symbols[static_cast<std::size_t>(index)].next) {
    const std::string_view piece = symbols[static_cast<std::size_t>(index)].text;
    const auto found = ids_.find(piece);
    const bool unknown = found == ids_.end() || found->second == unknown_id_;
    if (!unknown) {
      ids.push_back(found->second);
    } else if (model_.byte_fallback) {
      for (const char byte : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
    } else if (!previous_unknown) {
      ids.push_back(unknown_id_);  // a run of unknown symbols is one unknown id
    }
    previous_unknown = unknown;
  }
}

std::vector<std::int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  require_utf8(text, "the text to encode");
  std::vector<std::int64_t> ids;
  for (const TextSegment& segment : special_pieces_->split(text)) {
    if (segment.token_id) {
      ids.push_back(*segment.token_id);
    } else {
      encode_plain(segment.text, ids);
    }
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string text;
  // SentencePiece drops the "▁" of the dummy prefix: at the start, and
  // (as lorafed decodes the text between special pieces on its own) after one.
  std::size_t run_start = 0;
  bool prefix_seen = false;
  const bool strip_prefix = model_.add_dummy_prefix || model_.remove_extra_whitespaces;
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const SentencePiece& piece = model_.pieces[static_cast<std::size_t>(id)];
    if (piece.type == PieceType::kByte) {
      text += static_cast<char>(*byte_of_piece(piece.text));
      continue;
    }
    if (is_special(id)) {
      text += piece.text;
      run_start = text.size();
      prefix_seen = false;
      continue;
    }
    std::string_view surface = piece.text;
    if (strip_prefix && !prefix_seen && text.size() == run_start &&
        surface.starts_with(kSpaceSymbol)) {
      surface.remove_prefix(kSpaceSymbol.size());
      prefix_seen = !model_.remove_extra_whitespaces;
    }
    for (std::size_t offset = 0; offset < surface.size();) {
      if (surface.substr(offset).starts_with(kSpaceSymbol)) {
        text += ' ';
        offset += kSpaceSymbol.size();
      } else {
        text += surface[offset++];
      }
    }
  }
  return text;
}

std::int64_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<std::int64_t>(model_.pieces.size());
}

std::optional<std::int64_t> SentencePieceTokenizer::token_id(std::string_view token) const {
  const auto found = ids_.find(token);
  if (found == ids_.end()) return std::nullopt;
  return found->second;
}

}  // namespace lorafed::text
