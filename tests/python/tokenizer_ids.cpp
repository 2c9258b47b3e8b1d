// lorafed's SentencePiece ids for check_sentencepiece_ids.py to match with
// SentencePiece's own Python binding: trains a model with lorafed's trainer
// on a corpus folder's files (as the llama backend's default base does on
// /usr/share/common-licenses) into WORK_DIR/lorafed, then loads every
// WORK_DIR/<name>/tokenizer.model (check_sentencepiece_ids.py's, trained by
// SentencePiece, and lorafed's) as lorafed loads a model folder, and writes
// the ids and decoded text of some strings.
//
//   lorafed_tokenizer_ids CORPUS_DIR WORK_DIR
//
// Each WORK_DIR/<name> gets ids.json: [{"text": ..., "ids": [...], "decoded": ...}, ...].
#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "lorafed/error.hpp"
#include "sentencepiece_training.hpp"
#include "tokenizer.hpp"

namespace {

constexpr std::int64_t kVocabSize = 2000;

// The corpus files (regular files, links skipped, in name order) joined in one text.
std::string read_corpus(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && !entry.is_symlink()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw lorafed::ConfigError(dir.string() + ": no corpus files");
  std::string corpus;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    corpus.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    corpus += '\n';
  }
  return corpus;
}

// Strings off the corpus's beaten track: Unicode, whitespace runs, digits,
// user-defined pieces. None writes a control piece ("<s>"), which lorafed
// recognises and the binding's plain encode does not.
std::vector<std::string> texts(const std::string& corpus) {
  std::vector<std::string> all = {
      "",
      " ",
      "Hello, world!",
      "  leading and trailing spaces  ",
      "tabs\tand\ttabs\t\t, newlines\n\nand\r\nwindows line ends\n",
      "runs     of      spaces",
      "Digits 1234567890 and 3.14159, 2^16 = 65536.",
      "Café naïve façade Ærøskøbing Zürich — “quoted” ‘single’ … ½ ²",
      "東京タワー 北京 서울 Ελληνικά русский עברית العربية",
      "emoji 🙂👍🏽 👩‍👩‍👧 🇪🇺",
      "e\xCC\x81 (a combining accent) and \xC3\xA9 (composed)",
      "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007",
      "<|user|> What is 12 + 30?<|assistant|>42<|user|>",
      "a<|user|><|assistant|>  b <|assistant",
      "unknown runs: ✓✓✓ ⌘⌘ and ✓ alone",
  };
  // And every 40th line of the corpus itself.
  std::size_t line_number = 0;
  std::size_t start = 0;
  while (start < corpus.size()) {
    const std::size_t end = std::min(corpus.find('\n', start), corpus.size());
    if (line_number++ % 40 == 0) all.push_back(corpus.substr(start, end - start));
    start = end + 1;
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: lorafed_tokenizer_ids CORPUS_DIR WORK_DIR\n";
    return 2;
  }
  try {
    const std::filesystem::path work = argv[2];
    std::filesystem::create_directories(work);
    const std::string corpus = read_corpus(argv[1]);
    std::ofstream(work / "corpus.txt", std::ios::binary) << corpus;
    lorafed::text::train_sentencepiece(work / "corpus.txt", kVocabSize,
                                       work / "lorafed" / "tokenizer.model");
    std::vector<std::filesystem::path> folders;
    for (const auto& entry : std::filesystem::directory_iterator(work)) {
      if (std::filesystem::is_regular_file(entry.path() / "tokenizer.model")) {
        folders.push_back(entry.path());
      }
    }
    std::sort(folders.begin(), folders.end());
    for (const auto& folder : folders) {
      const auto tokenizer = lorafed::text::load_tokenizer(folder);
      nlohmann::json cases = nlohmann::json::array();
      for (const std::string& text : texts(corpus)) {
        const auto ids = tokenizer->encode(text);
        cases.push_back({{"text", text}, {"ids", ids}, {"decoded", tokenizer->decode(ids)}});
      }
      std::ofstream(folder / "ids.json") << cases.dump(1) << '\n';
      std::cout << cases.size() << " texts encoded with " << (folder / "tokenizer.model").string()
                << '\n';
    }
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "lorafed_tokenizer_ids: " << error.what() << '\n';
    return 1;
  }
}
