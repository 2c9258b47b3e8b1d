#include "sentencepiece_training.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "lorafed/error.hpp"
#include "string_map.hpp"
#include "utf8.hpp"

namespace lorafed::text {
namespace {

constexpr std::int32_t kNoSymbol = -1;  // a character without a piece

bool is_digit(std::string_view character) {
  return character.size() == 1 && character[0] >= '0' && character[0] <= '9';
}

// The corpus's words, as the model will see them: "▁" before each line and
// for each space; a word starts at a "▁" after anything else, and a digit
// is a word of its own. Counted, keyed by their text.
std::map<std::string, std::int64_t> count_words(const std::filesystem::path& corpus) {
  std::ifstream in(corpus, std::ios::binary);
  if (!in) throw ConfigError(corpus.string() + ": the training corpus cannot be read");
  std::map<std::string, std::int64_t> words;
  std::size_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (const auto bad = first_invalid_utf8(line)) {
      throw ConfigError(corpus.string() + ": line " + std::to_string(line_number) +
                        " is not UTF-8 (byte " + std::to_string(*bad + 1) + ")");
    }
    std::string word = std::string(kSpaceSymbol);  // the dummy prefix
    const auto flush = [&] {
      if (!word.empty()) ++words[word];
      word.clear();
    };
    bool after_space = true;
    for (std::size_t offset = 0; offset < line.size();) {
      const std::size_t length = utf8_length_at(line, offset);
      const std::string_view character = std::string_view(line).substr(offset, length);
      offset += length;
      if (character == " ") {
        if (!after_space) flush();
        word += kSpaceSymbol;
        after_space = true;
      } else if (is_digit(character)) {
        flush();
        words[std::string(character)] += 1;
        after_space = false;
      } else {
        word += character;
        after_space = false;
      }
    }
    flush();
  }
  if (words.empty()) throw ConfigError(corpus.string() + ": the training corpus has no text");
  return words;
}

struct Word {
  std::vector<std::int32_t> symbols;
  std::int64_t count = 0;
};

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32U) |
         static_cast<std::uint32_t>(right);
}

// BPE merges over the words, with the pair counts kept up to date word by
// word rather than recounted for every merge.
class MergeLearner {
 public:
  MergeLearner(std::vector<std::string> symbol_texts, std::vector<Word> words)
      : texts_(std::move(symbol_texts)), words_(std::move(words)) {
    for (std::size_t index = 0; index < words_.size(); ++index) add_pairs(index, true);
  }

  // The next merge's text, or nullopt when no pair is left.
  std::optional<std::string> merge_next() {
    std::uint64_t best = 0;
    std::int64_t best_count = 0;
    std::string best_text;
    for (const auto& [key, count] : counts_) {
      if (count < best_count || count <= 0) continue;
      const std::string text = joined(key);
      if (count > best_count || text < best_text) {
        best = key, best_count = count, best_text = text;
      }
    }
    if (best_count == 0) return std::nullopt;
    const auto merged = static_cast<std::int32_t>(texts_.size());
    texts_.push_back(best_text);
    const auto left = static_cast<std::int32_t>(best >> 32U);
    const auto right = static_cast<std::int32_t>(best & 0xFFFFFFFFU);
    std::vector<std::uint32_t> holders = std::move(holders_[best]);
    holders_.erase(best);
    std::sort(holders.begin(), holders.end());
    holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
    for (const std::uint32_t index : holders) {
      remove_pairs(index);
      std::vector<std::int32_t>& symbols = words_[index].symbols;
      std::vector<std::int32_t> rewritten;
      rewritten.reserve(symbols.size());
      for (std::size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          rewritten.push_back(merged);
          ++i;
        } else {
          rewritten.push_back(symbols[i]);
        }
      }
      symbols = std::move(rewritten);
      add_pairs(index, false, merged);
    }
    return best_text;
  }

 private:
  std::string joined(std::uint64_t key) const {
    return texts_[key >> 32U] + texts_[key & 0xFFFFFFFFU];
  }

  void remove_pairs(std::size_t index) {
    const Word& word = words_[index];
    for (std::size_t i = 1; i < word.symbols.size(); ++i) {
      if (word.symbols[i - 1] == kNoSymbol || word.symbols[i] == kNoSymbol) continue;
      const auto found = counts_.find(pair_key(word.symbols[i - 1], word.symbols[i]));
      if ((found->second -= word.count) == 0) counts_.erase(found);
    }
  }

  // Counts the word's pairs; records the word as a holder of every pair
  // (all) or only of those with `merged`, the symbol just made.
  void add_pairs(std::size_t index, bool all, std::int32_t merged = kNoSymbol) {
    const Word& word = words_[index];
    for (std::size_t i = 1; i < word.symbols.size(); ++i) {
      const std::int32_t left = word.symbols[i - 1];
      const std::int32_t right = word.symbols[i];
      if (left == kNoSymbol || right == kNoSymbol) continue;
      const std::uint64_t key = pair_key(left, right);
      counts_[key] += word.count;
      if (all || left == merged || right == merged) {
        holders_[key].push_back(static_cast<std::uint32_t>(index));
      }
    }
  }

  std::vector<std::string> texts_;
  std::vector<Word> words_;
  std::unordered_map<std::uint64_t, std::int64_t> counts_;
  // The words where a pair may be (stale entries are harmless: a word
  // without the pair is rewritten to itself).
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> holders_;
};

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path partial = path.string() + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw Error(partial.string() + ": cannot be written");
  }
  std::filesystem::rename(partial, path);
}

}  // namespace

SentencePieceModel train_sentencepiece_model(const std::filesystem::path& corpus_text_file,
                                             std::int64_t vocab_size,
                                             const SentencePieceTrainingOptions& options) {
  if (vocab_size <= 0) {
    throw ConfigError("a SentencePiece vocab_size must be positive, not " +
                      std::to_string(vocab_size));
  }
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0)) {
    throw ConfigError("character_coverage must be in (0, 1], not " +
                      std::to_string(options.character_coverage));
  }
  const std::map<std::string, std::int64_t> counted = count_words(corpus_text_file);

  // The characters that get pieces: the most frequent, up to the coverage.
  StringMap<std::int64_t> character_counts;
  std::int64_t total = 0;
  for (const auto& [word, count] : counted) {
    for (std::size_t offset = 0; offset < word.size();) {
      const std::size_t length = utf8_length_at(word, offset);
      character_counts[word.substr(offset, length)] += count;
      total += count;
      offset += length;
    }
  }
  std::vector<std::pair<std::string, std::int64_t>> characters(character_counts.begin(),
                                                               character_counts.end());
  std::sort(characters.begin(), characters.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::int64_t covered = 0;
  std::size_t kept = 0;
  while (kept < characters.size() &&
         static_cast<double>(covered) < options.character_coverage * static_cast<double>(total)) {
    covered += characters[kept++].second;
  }
  characters.resize(kept);

  SentencePieceModel model;
  model.byte_fallback = true;
  model.remove_extra_whitespaces = false;
  model.pieces.push_back({"<unk>", 0.0F, PieceType::kUnknown});
  model.pieces.push_back({"<s>", 0.0F, PieceType::kControl});
  model.pieces.push_back({"</s>", 0.0F, PieceType::kControl});
  for (unsigned byte = 0; byte < 256; ++byte) {
    model.pieces.push_back(
        {piece_of_byte(static_cast<unsigned char>(byte)), 0.0F, PieceType::kByte});
  }
  const auto fixed = static_cast<std::int64_t>(model.pieces.size() + characters.size());
  if (vocab_size < fixed) {
    throw ConfigError(corpus_text_file.string() + ": a vocab_size of " +
                      std::to_string(vocab_size) + " is smaller than the " + std::to_string(fixed) +
                      " pieces the corpus's " + std::to_string(characters.size()) +
                      " characters, the 256 bytes and <unk>, <s>, </s> need");
  }

  StringMap<std::int32_t> symbol_of;
  std::vector<std::string> symbol_texts;
  for (const auto& [character, count] : characters) {
    symbol_of.emplace(character, static_cast<std::int32_t>(symbol_texts.size()));
    symbol_texts.push_back(character);
  }
  std::vector<Word> words;
  for (const auto& [text, count] : counted) {
    Word word{.symbols = {}, .count = count};
    for (std::size_t offset = 0; offset < text.size();) {
      const std::size_t length = utf8_length_at(text, offset);
      const auto found = symbol_of.find(std::string_view(text).substr(offset, length));
      word.symbols.push_back(found == symbol_of.end() ? kNoSymbol : found->second);
      offset += length;
    }
    if (word.symbols.size() > 1) words.push_back(std::move(word));
  }

  MergeLearner learner(std::move(symbol_texts), std::move(words));
  std::unordered_set<std::string> pieces;
  for (const SentencePiece& piece : model.pieces) pieces.insert(piece.text);
  for (const auto& [character, count] : characters) pieces.insert(character);
  float score = 0.0F;
  while (static_cast<std::int64_t>(pieces.size()) < vocab_size) {
    const auto next = learner.merge_next();
    if (!next) {
      throw ConfigError(corpus_text_file.string() + ": a vocab_size of " +
                        std::to_string(vocab_size) + " is larger than the corpus allows (" +
                        std::to_string(pieces.size()) +
                        " pieces: every pair of its words is merged)");
    }
    // Two merges may spell the same piece (or a byte piece's text); it is a piece once.
    if (pieces.insert(*next).second) model.pieces.push_back({*next, score--, PieceType::kNormal});
  }
  for (const auto& [character, count] : characters) {
    model.pieces.push_back({character, score--, PieceType::kNormal});
  }
  return model;
}

void train_sentencepiece(const std::filesystem::path& corpus_text_file, std::int64_t vocab_size,
                         const std::filesystem::path& model_file,
                         const SentencePieceTrainingOptions& options) {
  const SentencePieceModel model = train_sentencepiece_model(corpus_text_file, vocab_size, options);
  try {
    write_file(model_file, serialize_sentencepiece_model(model));
  } catch (const std::filesystem::filesystem_error& error) {
    throw Error(model_file.string() + ": the trained model cannot be written (" + error.what() +
                ")");
  }
}

}  // namespace lorafed::text
