#include "bpe_model.hpp"

#include <cstdio>
#include <limits>
#include <queue>

#include "utf8.hpp"

namespace lorafed::text {
namespace {

struct MergeSymbols {
  std::string left;
  std::string right;
};

MergeSymbols read_merge(const JsonFile& file, const nlohmann::json& merge,
                        const std::string& where) {
  // Older files write "left right", newer ones ["left", "right"].
  if (merge.is_string()) {
    const std::string text = merge.get<std::string>();
    const std::size_t space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
      file.fail(where, "the merge \"" + text + "\" is not two symbols separated by one space");
    }
    return {text.substr(0, space), text.substr(space + 1)};
  }
  if (merge.is_array() && merge.size() == 2) {
    return {file.string_value(merge[0], element_path(where, 0)),
            file.string_value(merge[1], element_path(where, 1))};
  }
  file.fail(where, "expected a merge (\"left right\" or [\"left\", \"right\"])");
}

void refuse_unless_empty(const JsonFile& file, const nlohmann::json& model, std::string_view key,
                         const std::string& where) {
  const auto value = file.optional_string(model, key, where);
  if (value && !value->empty()) {
    file.fail(field_path(where, key), "\"" + *value +
                                          "\" is not supported: lorafed reads byte-level BPE "
                                          "models, which have none");
  }
}

}  // namespace

struct BpeModel::Symbol {
  std::int64_t id;
  std::ptrdiff_t previous;  // -1: first
  std::ptrdiff_t next;      // -1: last
  std::size_t length;       // bytes of the piece it covers; 0: merged into its left neighbour
};

std::uint64_t BpeModel::pair_key(std::int64_t left, std::int64_t right) {
  // Ids are at most kMaxTokenId (31 bits), so two fit in 64.
  return (static_cast<std::uint64_t>(left) << 32U) | static_cast<std::uint64_t>(right);
}

BpeModel BpeModel::from_json(const JsonFile& file, const nlohmann::json& model,
                             const std::string& where) {
  BpeModel bpe;
  const std::string type =
      file.string_value(file.member(model, "type", where), field_path(where, "type"));
  if (type != "BPE") file.fail(field_path(where, "type"), "\"" + type + "\" is not \"BPE\"");

  const std::string vocab_path = field_path(where, "vocab");
  const nlohmann::json& vocab = file.member(model, "vocab", where);
  file.require_object(vocab, vocab_path);
  for (const auto& [token, id_value] : vocab.items()) {
    const std::int64_t id = file.token_id(id_value, field_path(vocab_path, token));
    const auto [existing, inserted] = bpe.tokens_.emplace(id, token);
    if (!inserted) {
      file.fail(vocab_path, "id " + std::to_string(id) + " is given to both \"" + existing->second +
                                "\" and \"" + token + "\"");
    }
    bpe.ids_.emplace(token, id);
    bpe.largest_id_ = std::max(bpe.largest_id_, id);
  }

  const std::string merges_path = field_path(where, "merges");
  const nlohmann::json& merges = file.member(model, "merges", where);
  file.require_array(merges, merges_path);
  if (merges.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    file.fail(merges_path, "too many merges");
  }
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string merge_path = element_path(merges_path, rank);
    const MergeSymbols symbols = read_merge(file, merges[rank], merge_path);
    const auto left = bpe.id_of(symbols.left);
    const auto right = bpe.id_of(symbols.right);
    const auto merged = bpe.id_of(symbols.left + symbols.right);
    for (const auto& [symbol, id] : {std::pair{&symbols.left, left}, {&symbols.right, right}}) {
      if (!id) file.fail(merge_path, "the symbol \"" + *symbol + "\" is not in " + vocab_path);
    }
    if (!merged) {
      file.fail(merge_path, "the merged symbol \"" + symbols.left + symbols.right +
                                "\" is not in " + vocab_path);
    }
    // A merge listed twice keeps its last rank, as in the tokenizers crate.
    bpe.merges_[pair_key(*left, *right)] = Merge{static_cast<std::int32_t>(rank), *merged};
  }

  if (const nlohmann::json* dropout = file.optional_member(model, "dropout", where)) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      file.fail(field_path(where, "dropout"),
                "BPE dropout is not supported: lorafed encodes deterministically (set it to null)");
    }
  }
  refuse_unless_empty(file, model, "continuing_subword_prefix", where);
  refuse_unless_empty(file, model, "end_of_word_suffix", where);
  if (const auto unknown = file.optional_string(model, "unk_token", where)) {
    bpe.unknown_id_ = bpe.id_of(*unknown);
    if (!bpe.unknown_id_) {
      file.fail(field_path(where, "unk_token"), "\"" + *unknown + "\" is not in " + vocab_path);
    }
  }
  bpe.fuse_unknown_ = file.bool_or(model, "fuse_unk", false, where);
  bpe.byte_fallback_ = file.bool_or(model, "byte_fallback", false, where);
  bpe.ignore_merges_ = file.bool_or(model, "ignore_merges", false, where);
  return bpe;
}

std::optional<std::int64_t> BpeModel::id_of(std::string_view token) const {
  const auto found = ids_.find(token);
  if (found == ids_.end()) return std::nullopt;
  return found->second;
}

const std::string* BpeModel::token_of(std::int64_t id) const {
  const auto found = tokens_.find(id);
  return found == tokens_.end() ? nullptr : &found->second;
}

std::vector<BpeModel::Symbol> BpeModel::initial_symbols(std::string_view piece) const {
  std::vector<Symbol> symbols;
  const auto add = [&symbols](std::int64_t id, std::size_t length) {
    const auto index = static_cast<std::ptrdiff_t>(symbols.size());
    if (!symbols.empty()) symbols.back().next = index;
    symbols.push_back(Symbol{id, index - 1, -1, length});
  };
  std::optional<Symbol> pending_unknown;
  const auto flush_unknown = [&] {
    if (pending_unknown) add(pending_unknown->id, pending_unknown->length);
    pending_unknown.reset();
  };
  for (std::size_t offset = 0; offset < piece.size();) {
    const std::size_t length = utf8_length_at(piece, offset);
    const std::string_view character = piece.substr(offset, length);
    offset += length;
    if (const auto id = id_of(character)) {
      flush_unknown();
      add(*id, length);
      continue;
    }
    if (byte_fallback_) {
      std::vector<std::int64_t> byte_ids;
      for (const char byte : character) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(byte));
        if (const auto id = id_of(name)) byte_ids.push_back(*id);
      }
      if (byte_ids.size() == character.size()) {
        flush_unknown();
        for (const std::int64_t id : byte_ids) add(id, 1);
        continue;
      }
    }
    if (!unknown_id_) continue;  // dropped, as the tokenizers crate does without an unk_token
    if (pending_unknown && fuse_unknown_) {
      pending_unknown->length += length;
    } else {
      flush_unknown();
      pending_unknown = Symbol{*unknown_id_, -1, -1, length};
    }
  }
  flush_unknown();
  return symbols;
}

void BpeModel::merge_symbols(std::vector<Symbol>& symbols) const {
  struct Candidate {
    std::int32_t rank;
    std::ptrdiff_t position;
    std::int64_t merged_id;
  };
  // Lowest rank first; among equal ranks, the leftmost.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.position > b.position;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  const auto consider = [&](std::ptrdiff_t position) {
    const std::ptrdiff_t next = symbols[position].next;
    if (next < 0) return;
    const auto found = merges_.find(pair_key(symbols[position].id, symbols[next].id));
    if (found != merges_.end()) {
      queue.push(Candidate{found->second.rank, position, found->second.merged_id});
    }
  };
  for (std::ptrdiff_t position = 0; position + 1 < static_cast<std::ptrdiff_t>(symbols.size());
       ++position) {
    consider(position);
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.position];
    if (left.length == 0 || left.next < 0) continue;
    const Symbol right = symbols[left.next];
    // A stale candidate: one of its symbols has been merged since.
    const auto current = merges_.find(pair_key(left.id, right.id));
    if (current == merges_.end() || current->second.merged_id != top.merged_id) continue;
    symbols[left.next].length = 0;
    left.id = top.merged_id;
    left.length += right.length;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].previous = top.position;
    if (left.previous >= 0) consider(left.previous);
    consider(top.position);
  }
  std::erase_if(symbols, [](const Symbol& symbol) { return symbol.length == 0; });
}

void BpeModel::tokenize(std::string_view piece, std::vector<std::int64_t>& ids) const {
  if (ignore_merges_) {
    if (const auto id = id_of(piece)) {
      ids.push_back(*id);
      return;
    }
  }
  std::vector<Symbol> symbols = initial_symbols(piece);
  merge_symbols(symbols);
  for (const Symbol& symbol : symbols) ids.push_back(symbol.id);
}

}  // namespace lorafed::text
