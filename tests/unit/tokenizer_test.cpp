#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "byte_level_bpe.hpp"
#include "lorafed/error.hpp"
#include "sentencepiece_model.hpp"
#include "sentencepiece_tokenizer.hpp"
#include "sentencepiece_training.hpp"
#include "tokenizer.hpp"
#include "unit/temp_folder.hpp"

using Catch::Matchers::Contains;
using lorafed::FormatError;
using lorafed::text::load_tokenizer;
using lorafed::text::Tokenizer;
using Ids = std::vector<std::int64_t>;
using lorafed::test::TempFolder;

namespace {

std::string utf8(char32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
  return out;
}

// GPT-2's bytes_to_unicode (encoder.py), written again from its definition:
// printable Latin-1 bytes stand for themselves, the others take 256, 257, ...
// in byte order.
std::string byte_symbol(int byte) {
  const auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  if (printable(byte)) return utf8(static_cast<char32_t>(byte));
  int shifted = 0;
  for (int b = 0; b < byte; ++b) shifted += printable(b) ? 0 : 1;
  return utf8(static_cast<char32_t>(256 + shifted));
}

// The hand-made tokenizers below give byte b the id b, so a byte's id is its value:
// 'a' = 97, ' ' (written "Ġ") = 32, '\n' (written "Ċ") = 10.
struct TokenizerJson {
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json merges = nlohmann::json::array();
  nlohmann::json pre_tokenizer = byte_level(false, false);
  nlohmann::json normalizer = nullptr;
  nlohmann::json added_tokens = nlohmann::json::array();
  bool ignore_merges = false;

  TokenizerJson() {
    for (int byte = 0; byte < 256; ++byte) vocab[byte_symbol(byte)] = byte;
  }

  static nlohmann::json byte_level(bool add_prefix_space, bool use_regex) {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", add_prefix_space},
            {"trim_offsets", true},
            {"use_regex", use_regex}};
  }

  // Adds the merge "left right" (the next rank) and its result with this id.
  void merge(const std::string& left, const std::string& right, int id) {
    vocab[left + right] = id;
    merges.push_back(left + " " + right);
  }

  void add_token(int id, const std::string& content, bool special = true, bool lstrip = false,
                 bool rstrip = false, bool single_word = false) {
    added_tokens.push_back({{"id", id},
                            {"content", content},
                            {"single_word", single_word},
                            {"lstrip", lstrip},
                            {"rstrip", rstrip},
                            {"normalized", false},
                            {"special", special}});
  }

  nlohmann::json json() const {
    return {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added_tokens},
            {"normalizer", normalizer},
            {"pre_tokenizer", pre_tokenizer},
            {"post_processor", nullptr},
            {"decoder", byte_level(true, true)},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", ignore_merges},
              {"vocab", vocab},
              {"merges", merges}}}};
  }
};

std::unique_ptr<Tokenizer> load_json(const TempFolder& folder, const nlohmann::json& json) {
  folder.write("tokenizer.json", json.dump());
  return load_tokenizer(folder.path());
}

// Text that byte-level tokenizers must give back unchanged.
const std::vector<std::string> kUnicodeTexts = {
    "Café naïve façade, Ærøskøbing; Zürich — “quoted” ‘single’ … así, soft\u00ADhyphen",
    "東京タワー と 北京 and 서울 (CJK), Ελληνικά, русский, עברית, العربية",
    "emoji 🙂👍🏽 👩‍👩‍👧 and flags 🇪🇺",
    "  leading spaces, tabs\t\there,   runs   of  spaces  ",
    "lines\nand\n\nblank lines\r\nwindows\r\n\n  \n",
    "digits 1234567890 ½ ², punctuation !!! ??? ... ---",
    "",
};

// A few hundred lines of English for SentencePiece to learn from.
std::string training_corpus() {
  const std::vector<std::string> subjects = {"The server",   "Each client",   "A federation",
                                             "The strategy", "Every adapter", "The model"};
  const std::vector<std::string> verbs = {"aggregates", "trains",    "sends", "receives",
                                          "truncates",  "evaluates", "merges"};
  const std::vector<std::string> objects = {
      "the low-rank factors",       "its local data",  "an update of rank 8",
      "the global model",           "singular values", "the weighted average",
      "twenty rounds of 10 clients"};
  std::string corpus;
  int line = 0;
  for (const auto& subject : subjects) {
    for (const auto& verb : verbs) {
      for (const auto& object : objects) {
        corpus += subject + " " + verb + " " + object;
        corpus += (++line % 3 == 0) ? ", and then it waits.\n" : ".\n";
      }
    }
  }
  return corpus;
}

std::unique_ptr<Tokenizer> trained_sentencepiece(const TempFolder& folder) {
  const auto corpus = folder.write("corpus.txt", training_corpus());
  lorafed::text::train_sentencepiece(corpus, 400, folder.path() / "tokenizer.model");
  return load_tokenizer(folder.path());
}

}  // namespace

TEST_CASE("the byte symbols are GPT-2's", "[tokenizer]") {
  // Spot checks against the published table, so the test's own copy is right.
  CHECK(byte_symbol(' ') == "Ġ");
  CHECK(byte_symbol('\n') == "Ċ");
  CHECK(byte_symbol('\t') == "ĉ");
  CHECK(byte_symbol('a') == "a");
  CHECK(byte_symbol(0xAD) == "Ń");
  CHECK(byte_symbol(0) == "Ā");
}

TEST_CASE("a byte-level BPE gives Unicode text back unchanged", "[tokenizer]") {
  TempFolder folder("bpe-roundtrip");
  TokenizerJson file;
  file.pre_tokenizer = TokenizerJson::byte_level(false, true);
  file.merge("Ġ", "t", 256);
  file.merge("h", "e", 257);
  file.merge("Ġt", "he", 258);
  file.merge("Ã", "©", 259);  // "é" as UTF-8 bytes C3 A9
  file.merge("Ġ", "Ġ", 260);
  const auto tokenizer = load_json(folder, file.json());
  for (const std::string& text : kUnicodeTexts) {
    INFO(text);
    const Ids ids = tokenizer->encode(text);
    CHECK(tokenizer->decode(ids) == text);
  }
  // Every byte's symbol decodes to that byte, and back.
  for (int byte = 0; byte < 256; ++byte) {
    INFO("byte " << byte);
    CHECK(tokenizer->decode({byte}) == std::string(1, static_cast<char>(byte)));
  }
  CHECK(tokenizer->encode(" the") == Ids{258});
  CHECK(tokenizer->encode("é") == Ids{259});
  // Ids cut inside a character decode to the bytes they carry.
  const Ids smile = tokenizer->encode("🙂");  // F0 9F 99 82, one id per byte
  REQUIRE(smile == Ids{0xF0, 0x9F, 0x99, 0x82});
  CHECK(tokenizer->decode({smile[0], smile[1]}) == std::string("\xF0\x9F"));
}

TEST_CASE("BPE applies merges by rank, not from left to right", "[tokenizer]") {
  TempFolder folder("bpe-ranks");
  TokenizerJson file;
  file.merge("b", "c", 256);   // rank 0
  file.merge("a", "b", 257);   // rank 1
  file.merge("a", "bc", 258);  // rank 2
  file.merge("a", "a", 259);   // rank 3
  const auto tokenizer = load_json(folder, file.json());
  CHECK(dynamic_cast<const lorafed::text::ByteLevelBpeTokenizer*>(tokenizer.get()) != nullptr);
  // "abc": the pairs are (a,b) rank 1 and (b,c) rank 0. Rank 0 goes first:
  // a|bc, then (a,bc) rank 2 gives abc = 258. Left to right would have merged
  // a+b = 257 first and left "c" (99) alone: {257, 99}.
  CHECK(tokenizer->encode("abc") == Ids{258});
  // "abab": (a,b) at 0 and at 2, both rank 1, (b,a) is no merge: ab ab.
  CHECK(tokenizer->encode("abab") == Ids{257, 257});
  // "aaa": (a,a) at 0 and 1 have the same rank; the leftmost wins: aa a.
  CHECK(tokenizer->encode("aaa") == Ids{259, 'a'});
  // "cab": (c,a) no merge, (a,b) rank 1: c ab.
  CHECK(tokenizer->encode("cab") == Ids{'c', 257});
  // Without a regex the space is one more byte symbol: a Ġ bc → (a,Ġ) no merge.
  CHECK(tokenizer->encode("a bc") == Ids{'a', ' ', 256});
  CHECK(tokenizer->vocab_size() == 260);
  CHECK(tokenizer->token_id("abc") == 258);
  CHECK(tokenizer->token_id("Ġ") == 32);
  CHECK_FALSE(tokenizer->token_id("abcd").has_value());
  CHECK_FALSE(tokenizer->bos_id().has_value());
}

TEST_CASE("merges written as arrays read as the strings do", "[tokenizer]") {
  TempFolder folder("bpe-array-merges");
  TokenizerJson file;
  file.merge("b", "c", 256);
  file.merge("a", "b", 257);
  file.merge("a", "bc", 258);
  using nlohmann::json;
  file.merges =
      json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})});
  const auto tokenizer = load_json(folder, file.json());
  CHECK(tokenizer->encode("abc") == Ids{258});  // as above: rank 0 (b,c), then (a,bc)
  CHECK(tokenizer->encode("abab") == Ids{257, 257});
}

TEST_CASE("ByteLevel with use_regex splits text as GPT-2 does", "[tokenizer]") {
  TempFolder folder("bpe-gpt2-regex");
  TokenizerJson file;
  file.pre_tokenizer = TokenizerJson::byte_level(false, true);
  file.merge("o", "Ġ", 260);   // rank 0: would join "Hello" to " world" without the regex
  file.merge("Ġ", "w", 261);   // rank 1
  file.merge("'", "s", 262);   // rank 2
  file.merge("Ċ", "Ċ", 263);   // rank 3
  file.merge("ĊĊ", "Ġ", 264);  // rank 4
  file.merge("Ġ", "x", 265);   // rank 5
  file.merge("!", "!", 266);   // rank 6
  const auto tokenizer = load_json(folder, file.json());
  // GPT-2's pattern cuts "Hello world's 42!!\n\n  x" into
  //   "Hello" " world" "'s" " 42" "!!" "\n\n " " x"
  // (\s+(?!\S) stops one space before "x", which takes that space as " x").
  //   Hello  → H e l l o          = 72 101 108 108 111  (o+Ġ cannot merge: " world" is apart)
  //   " world" → Ġw o r l d       = 261 111 114 108 100
  //   "'s"   → 262;  " 42" → Ġ 4 2 = 32 52 50;  "!!" → 266
  //   "\n\n " → Ċ Ċ Ġ → ĊĊ Ġ → ĊĊĠ = 264;  " x" → 265
  CHECK(tokenizer->encode("Hello world's 42!!\n\n  x") ==
        Ids{72, 101, 108, 108, 111, 261, 111, 114, 108, 100, 262, 32, 52, 50, 266, 264, 265});

  // add_prefix_space puts a space before the text: " Hello" → Ġ H e l l o.
  TempFolder prefixed_folder("bpe-gpt2-prefix");
  file.pre_tokenizer = TokenizerJson::byte_level(true, true);
  const auto prefixed = load_json(prefixed_folder, file.json());
  CHECK(prefixed->encode("Hello") == Ids{32, 72, 101, 108, 108, 111});
  CHECK(prefixed->encode("world") == Ids{261, 111, 114, 108, 100});
}

TEST_CASE("a Llama-3 pre-tokenizer: Split by its regex, ByteLevel without, ignore_merges",
          "[tokenizer]") {
  TempFolder folder("bpe-llama3");
  TokenizerJson file;
  const std::string llama3_pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  file.pre_tokenizer = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"},
                           {"pattern", {{"Regex", llama3_pattern}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          TokenizerJson::byte_level(false, false)}}};
  file.ignore_merges = true;
  file.merge("3", "4", 270);    // rank 0: would join "123" and "45" if digits were not cut at 3
  file.merge("4", "5", 271);    // rank 1
  file.merge("I", "'", 272);    // rank 2: would fire if "'VE" were not cut off case-insensitively
  file.merge("Ċ", "Ċ", 273);    // rank 3
  file.vocab["Ġapples"] = 300;  // no merges build it: only ignore_merges finds it
  const auto tokenizer = load_json(folder, file.json());
  // The pattern cuts "I'VE 12345 apples\n\n" into
  //   "I" "'VE" " " "123" "45" " apples" "\n\n"
  //   I → 73;  'VE → ' V E = 39 86 69;  " " → 32;  123 → 49 50 51 (3 4 are apart);
  //   45 → 271;  " apples" is in the vocabulary as Ġapples → 300 whole;  \n\n → 273
  const Ids expected = {73, 39, 86, 69, 32, 49, 50, 51, 271, 300, 273};
  CHECK(tokenizer->encode("I'VE 12345 apples\n\n") == expected);
  CHECK(tokenizer->decode(expected) == "I'VE 12345 apples\n\n");

  // Without ignore_merges, " apples" is its bytes: Ġ a p p l e s.
  TempFolder merging_folder("bpe-llama3-merging");
  file.ignore_merges = false;
  const auto merging = load_json(merging_folder, file.json());
  CHECK(merging->encode(" apples") == Ids{32, 97, 112, 112, 108, 101, 115});
}

TEST_CASE("Split's delimiter behaviors cut as the tokenizers crate defines them", "[tokenizer]") {
  // split.rs's own example: "How are you doing?" split on \w+|[^\w\s]+ with invert, so the
  // delimiters are the spaces. Each behavior cuts it differently:
  //   Removed            How | are | you | doing | ?
  //   Isolated           How | ␣ | are | ␣ | you | ␣ | doing | ?
  //   MergedWithPrevious How␣ | are␣ | you␣ | doing | ?
  //   MergedWithNext     How | ␣are | ␣you | ␣doing | ?
  //   Contiguous         How | ␣ | are | ␣ | you | ␣ | doing?
  // Three merges show where the cuts fell, as each fires only inside one piece:
  // w+Ġ = 256 ("How␣"), Ġ+a = 257 ("␣are"), g+? = 258 ("doing?").
  const std::vector<std::pair<std::string, Ids>> behaviors = {
      {"Removed", {72, 111, 119, 97, 114, 101, 121, 111, 117, 100, 111, 105, 110, 103, 63}},
      {"Isolated",
       {72, 111, 119, 32, 97, 114, 101, 32, 121, 111, 117, 32, 100, 111, 105, 110, 103, 63}},
      {"MergedWithPrevious",
       {72, 111, 256, 97, 114, 101, 32, 121, 111, 117, 32, 100, 111, 105, 110, 103, 63}},
      {"MergedWithNext",
       {72, 111, 119, 257, 114, 101, 32, 121, 111, 117, 32, 100, 111, 105, 110, 103, 63}},
      {"Contiguous",
       {72, 111, 119, 32, 97, 114, 101, 32, 121, 111, 117, 32, 100, 111, 105, 110, 258}},
  };
  for (const auto& [behavior, expected] : behaviors) {
    INFO(behavior);
    TempFolder folder("bpe-split-" + behavior);
    TokenizerJson file;
    file.pre_tokenizer = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"},
                             {"pattern", {{"Regex", R"(\w+|[^\w\s]+)"}}},
                             {"behavior", behavior},
                             {"invert", true}},
                            TokenizerJson::byte_level(false, false)}}};
    file.merge("w", "Ġ", 256);
    file.merge("Ġ", "a", 257);
    file.merge("g", "?", 258);
    CHECK(load_json(folder, file.json())->encode("How are you doing?") == expected);
  }
}

TEST_CASE("Split by a String pattern matches it literally", "[tokenizer]") {
  TempFolder folder("bpe-split-string");
  TokenizerJson file;
  file.pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"String", "."}}}, {"behavior", "Removed"}},
        TokenizerJson::byte_level(false, false)}}};
  // "." is a full stop here, not "any character": "a.b" loses only it.
  CHECK(load_json(folder, file.json())->encode("a.b..c") == Ids{'a', 'b', 'c'});
}

TEST_CASE("the NFC normalizer composes characters before BPE", "[tokenizer]") {
  TempFolder folder("bpe-nfc");
  TokenizerJson file;
  file.normalizer = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  file.merge("Ã", "©", 256);  // "é" (U+00E9) is C3 A9 in UTF-8
  const auto tokenizer = load_json(folder, file.json());
  // "e" + U+0301 (combining acute, CC 81) composes to U+00E9.
  CHECK(tokenizer->encode("e\xCC\x81") == Ids{256});
  CHECK(tokenizer->encode("\xC3\xA9") == Ids{256});

  TempFolder plain_folder("bpe-no-nfc");
  file.normalizer = nullptr;
  CHECK(load_json(plain_folder, file.json())->encode("e\xCC\x81") == Ids{'e', 0xCC, 0x81});
}

TEST_CASE("added and special tokens in the text are their own ids", "[tokenizer]") {
  TempFolder folder("bpe-added");
  TokenizerJson file;
  file.pre_tokenizer = TokenizerJson::byte_level(false, true);
  file.merge("a", "b", 256);
  file.add_token(1000, "<|endoftext|>");  // past the model's vocabulary
  file.add_token(1001, "<a>");
  file.add_token(1002, "<a><b>");  // longer: wins where both match
  file.add_token(1003, "[MASK]", true, /*lstrip=*/true);
  file.add_token(1004, "[R]", true, false, /*rstrip=*/true);
  file.add_token(1005, "qq", false, false, false, /*single_word=*/true);
  const auto tokenizer = load_json(folder, file.json());

  // "ab<|endoftext|>ab": ab → 256, the token whole, ab → 256 (the regex never sees "<|").
  CHECK(tokenizer->encode("ab<|endoftext|>ab") == Ids{256, 1000, 256});
  // Longest match first: "<a><b>" is one token, then "<a>".
  CHECK(tokenizer->encode("x<a><b>y<a>") == Ids{'x', 1002, 'y', 1001});
  // lstrip swallows the spaces before "[MASK]", rstrip those after "[R]".
  CHECK(tokenizer->encode("hi  [MASK]") == Ids{'h', 'i', 1003});
  CHECK(tokenizer->encode("[R]  z") == Ids{1004, 'z'});
  // single_word: "qq" alone is the token; inside "qqq" it is not (then " qqq" is
  // Ġ q q q after GPT-2's regex).
  CHECK(tokenizer->encode("qq qqq") == Ids{1005, ' ', 'q', 'q', 'q'});

  CHECK(tokenizer->decode({256, 1000, 1002}) == "ab<|endoftext|><a><b>");
  CHECK(tokenizer->decode(tokenizer->encode("one<|endoftext|>two")) == "one<|endoftext|>two");
  CHECK(tokenizer->token_id("<|endoftext|>") == 1000);
  CHECK(tokenizer->vocab_size() == 1006);
}

TEST_CASE("tokenizer_config.json names BOS and EOS", "[tokenizer]") {
  TempFolder folder("bpe-config");
  TokenizerJson file;
  file.add_token(300, "<|begin_of_text|>");
  file.add_token(301, "<|end_of_text|>");
  folder.write("tokenizer_config.json",
               R"({"bos_token": "<|begin_of_text|>",
                   "eos_token": {"__type": "AddedToken", "content": "<|end_of_text|>"}})");
  const auto tokenizer = load_json(folder, file.json());
  CHECK(tokenizer->bos_id() == 300);
  CHECK(tokenizer->eos_id() == 301);

  folder.write("tokenizer_config.json", R"({"bos_token": null, "eos_token": "<|end_of_text|>"})");
  const auto qwen_like = load_tokenizer(folder.path());
  CHECK_FALSE(qwen_like->bos_id().has_value());
  CHECK(qwen_like->eos_id() == 301);

  folder.write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  CHECK_THROWS_WITH(load_tokenizer(folder.path()), Contains("tokenizer_config.json") &&
                                                       Contains("eos_token") &&
                                                       Contains("\"</s>\" is not a token"));
}

TEST_CASE("malformed tokenizer.json files are FormatErrors saying what is wrong", "[tokenizer]") {
  TempFolder folder("bpe-malformed");
  const auto error_of = [&folder](const std::string& text) -> std::string {
    folder.write("tokenizer.json", text);
    try {
      load_tokenizer(folder.path());
    } catch (const FormatError& error) {
      return error.what();
    }
    return "no error";
  };
  const auto error_of_json = [&error_of](const nlohmann::json& json) {
    return error_of(json.dump());
  };

  CHECK_THAT(error_of(R"({"model": {"type": "BPE", "vocab": )"),
             Contains("tokenizer.json") && Contains("not valid JSON"));

  TokenizerJson unknown_symbol;
  unknown_symbol.merges.push_back("a zz");
  CHECK_THAT(error_of_json(unknown_symbol.json()),
             Contains("tokenizer.json: model.merges[0]") &&
                 Contains("the symbol \"zz\" is not in model.vocab"));

  TokenizerJson unmerged;
  unmerged.merges.push_back("a b");  // "ab" itself missing from the vocabulary
  CHECK_THAT(error_of_json(unmerged.json()),
             Contains("model.merges[0]") && Contains("merged symbol \"ab\" is not in"));

  TokenizerJson text_id;
  text_id.vocab["hello"] = "7";
  CHECK_THAT(error_of_json(text_id.json()),
             Contains("model.vocab.hello") && Contains("expected an integer id, found string"));

  TokenizerJson fractional_id;
  fractional_id.vocab["hello"] = 7.5;
  CHECK_THAT(error_of_json(fractional_id.json()), Contains("expected an integer id"));

  TokenizerJson negative_id;
  negative_id.vocab["hello"] = -3;
  CHECK_THAT(error_of_json(negative_id.json()), Contains("id -3 is negative"));

  TokenizerJson shared_id;
  shared_id.vocab["hello"] = 97;
  CHECK_THAT(error_of_json(shared_id.json()), Contains("id 97 is given to both"));

  TokenizerJson lowercase;
  lowercase.normalizer = {{"type", "Lowercase"}};
  CHECK_THAT(error_of_json(lowercase.json()),
             Contains("normalizer.type") && Contains("\"Lowercase\" is not supported"));

  TokenizerJson digits;
  digits.pre_tokenizer = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Digits"}, {"individual_digits", true}},
                            TokenizerJson::byte_level(false, true)}}};
  CHECK_THAT(error_of_json(digits.json()),
             Contains("pre_tokenizer.pretokenizers[0].type") && Contains("\"Digits\""));

  TokenizerJson bad_behavior;
  bad_behavior.pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Sideways"}},
        TokenizerJson::byte_level(false, false)}}};
  CHECK_THAT(error_of_json(bad_behavior.json()), Contains("unknown split behavior \"Sideways\""));

  TokenizerJson bad_regex;
  bad_regex.pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
        TokenizerJson::byte_level(false, false)}}};
  CHECK_THAT(error_of_json(bad_regex.json()),
             Contains("pre_tokenizer.pretokenizers[0].pattern") && Contains("does not compile"));

  TokenizerJson bad_added;
  bad_added.add_token(1000, "<x>");
  bad_added.added_tokens[0]["id"] = "1000";
  CHECK_THAT(error_of_json(bad_added.json()), Contains("added_tokens[0].id"));

  nlohmann::json no_vocab = TokenizerJson().json();
  no_vocab["model"].erase("vocab");
  CHECK_THAT(error_of_json(no_vocab), Contains("model.vocab: missing"));

  nlohmann::json dropout = TokenizerJson().json();
  dropout["model"]["dropout"] = 0.1;
  CHECK_THAT(error_of_json(dropout), Contains("model.dropout") && Contains("not supported"));

  CHECK_THAT(error_of("[1, 2, 3]"), Contains("tokenizer.json") && Contains("expected an object"));
}

TEST_CASE("a tokenizer.json cut anywhere is a FormatError, never a crash", "[tokenizer]") {
  TempFolder folder("bpe-truncated");
  TokenizerJson file;
  file.pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", R"(\s+)"}}}, {"behavior", "Isolated"}},
        TokenizerJson::byte_level(false, false)}}};
  file.merge("a", "b", 256);
  file.merges = nlohmann::json::array({nlohmann::json::array({"a", "b"})});
  file.add_token(300, "<s>");
  const std::string text = file.json().dump();
  for (std::size_t length = 0; length < text.size(); length += 97) {
    INFO("cut at " << length << " of " << text.size());
    folder.write("tokenizer.json", text.substr(0, length));
    CHECK_THROWS_AS(load_tokenizer(folder.path()), FormatError);
  }
  folder.write("tokenizer.json", text);
  CHECK(load_tokenizer(folder.path())->encode("ab<s>") == Ids{256, 300});
}

TEST_CASE("text that is not UTF-8 is refused", "[tokenizer]") {
  TempFolder folder("bpe-not-utf8");
  const auto tokenizer = load_json(folder, TokenizerJson().json());
  CHECK_THROWS_WITH(tokenizer->encode("ok \xFF bad"),
                    Contains("not valid UTF-8") && Contains("byte 3"));
}

TEST_CASE("a folder without a tokenizer says what was looked for", "[tokenizer]") {
  TempFolder folder("no-tokenizer");
  CHECK_THROWS_WITH(load_tokenizer(folder.path()),
                    Contains("tokenizer.json") && Contains("tokenizer.model"));
  // A tokenizer.json that is not a byte-level BPE, and no tokenizer.model.
  folder.write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  CHECK_THROWS_WITH(load_tokenizer(folder.path()),
                    Contains("its model is \"Unigram\"") && Contains("tokenizer.model"));
  CHECK_THROWS_AS(load_tokenizer(folder.path() / "absent"), FormatError);
}

TEST_CASE("a trained SentencePiece model gives Unicode text back unchanged", "[tokenizer]") {
  TempFolder folder("sp-roundtrip");
  const auto tokenizer = trained_sentencepiece(folder);
  CHECK(dynamic_cast<const lorafed::text::SentencePieceTokenizer*>(tokenizer.get()) != nullptr);
  CHECK(tokenizer->vocab_size() == 400);
  for (const std::string& text : kUnicodeTexts) {
    INFO(text);
    CHECK(tokenizer->decode(tokenizer->encode(text)) == text);
  }
  // Llama's layout: unk 0, bos 1, eos 2.
  CHECK(tokenizer->token_id("<unk>") == 0);
  CHECK(tokenizer->bos_id() == 1);
  CHECK(tokenizer->eos_id() == 2);
  CHECK_FALSE(tokenizer->token_id("no such piece").has_value());
  // Bytes outside the corpus fall back to byte pieces, <0xF0> and so on.
  const auto byte_piece = tokenizer->token_id("<0xF0>");
  REQUIRE(byte_piece.has_value());
  CHECK(tokenizer->encode("🙂")[1] == *byte_piece);  // after the "▁" of the dummy prefix
}

TEST_CASE("SentencePiece's control pieces in the text are themselves", "[tokenizer]") {
  TempFolder folder("sp-specials");
  const auto tokenizer = trained_sentencepiece(folder);
  const Ids server = tokenizer->encode("server");
  const Ids with_specials = tokenizer->encode("<s>server</s>");
  Ids expected = {1};
  expected.insert(expected.end(), server.begin(), server.end());
  expected.push_back(2);
  CHECK(with_specials == expected);
  CHECK(tokenizer->decode(with_specials) == "<s>server</s>");
  CHECK(tokenizer->decode({2}) == "</s>");
  // Ids past the vocabulary name nothing.
  CHECK(tokenizer->decode({-1, 400, 100000}).empty());
}

TEST_CASE("SentencePiece training is deterministic and its errors name the corpus", "[tokenizer]") {
  TempFolder folder("sp-training");
  const auto corpus = folder.write("corpus.txt", training_corpus());
  const auto read = [](const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  lorafed::text::train_sentencepiece(corpus, 350, folder.path() / "first.model");
  lorafed::text::train_sentencepiece(corpus, 350, folder.path() / "second.model");
  CHECK(read(folder.path() / "first.model") == read(folder.path() / "second.model"));
  // Fewer ids than the corpus's characters and the 256 bytes need.
  CHECK_THROWS_WITH(lorafed::text::train_sentencepiece(corpus, 100, folder.path() / "small.model"),
                    Contains("corpus.txt") && Contains("a vocab_size of 100 is smaller than the"));
  CHECK_THROWS_AS(lorafed::text::train_sentencepiece(folder.path() / "absent.txt", 350,
                                                     folder.path() / "absent.model"),
                  lorafed::ConfigError);
}

TEST_CASE("load_tokenizer takes tokenizer.model when tokenizer.json is not byte-level",
          "[tokenizer]") {
  TempFolder folder("sp-fallback");
  const auto corpus = folder.write("corpus.txt", training_corpus());
  lorafed::text::train_sentencepiece(corpus, 400, folder.path() / "tokenizer.model");
  // A Llama-2 style tokenizer.json: BPE with byte fallback, no ByteLevel pre-tokenizer.
  folder.write("tokenizer.json",
               R"({"model": {"type": "BPE", "vocab": {}, "merges": [], "byte_fallback": true},
                   "pre_tokenizer": null, "normalizer": {"type": "Sequence", "normalizers": []}})");
  const auto tokenizer = load_tokenizer(folder.path());
  CHECK(dynamic_cast<const lorafed::text::SentencePieceTokenizer*>(tokenizer.get()) != nullptr);

  folder.write("tokenizer.model", "not a model");
  CHECK_THROWS_WITH(load_tokenizer(folder.path()),
                    Contains("tokenizer.model") && Contains("not a SentencePiece model"));
}

namespace {

using lorafed::text::PieceType;
using lorafed::text::SentencePieceModel;
using lorafed::text::SentencePieceTokenizer;

// A hand-made model: the scores decide the merges.
SentencePieceModel tiny_model() {
  SentencePieceModel model;
  model.remove_extra_whitespaces = false;
  model.pieces = {{"<unk>", 0.0F, PieceType::kUnknown}, {"<s>", 0.0F, PieceType::kControl},
                  {"</s>", 0.0F, PieceType::kControl},  {"▁", -1.0F, PieceType::kNormal},
                  {"a", -2.0F, PieceType::kNormal},     {"b", -3.0F, PieceType::kNormal},
                  {"ab", -4.0F, PieceType::kNormal},    {"▁a", -0.5F, PieceType::kNormal},
                  {"▁ab", -5.0F, PieceType::kNormal},   {"<tool>", 0.0F, PieceType::kUserDefined}};
  return model;
}

std::string with_piece_appended(std::string model, std::string_view piece_message) {
  model += '\x0A';  // field 1 (pieces), length-delimited
  model += static_cast<char>(piece_message.size());
  model += piece_message;
  return model;
}

}  // namespace

TEST_CASE("SentencePiece BPE merges the best-scored pair first, user-defined pieces whole",
          "[tokenizer]") {
  const SentencePieceTokenizer tokenizer(tiny_model());
  // "▁ab": ▁+a (-0.5) before a+b (-4), then ▁a+b makes ▁ab (-5).
  CHECK(tokenizer.encode("ab") == Ids{8});
  // Runs of unknown characters are one <unk>; spaces are "▁".
  CHECK(tokenizer.encode("a xyz b") == Ids{7, 3, 0, 3, 5});
  CHECK(tokenizer.encode("a<tool>b") == Ids{7, 9, 5});
  CHECK(tokenizer.encode("</s>a") == Ids{2, 7});
  CHECK(tokenizer.decode({8, 3, 5}) == "ab b");
  CHECK(tokenizer.decode({1, 7, 2}) == "<s>a</s>");
  CHECK(tokenizer.bos_id() == 1);
  CHECK(tokenizer.eos_id() == 2);
  CHECK(tokenizer.encode("").empty());
}

TEST_CASE("a SentencePiece model written by lorafed reads back as it was", "[tokenizer]") {
  TempFolder folder("sp-format");
  const SentencePieceModel model = tiny_model();
  const auto path =
      folder.write("tokenizer.model", lorafed::text::serialize_sentencepiece_model(model));
  const SentencePieceModel read = lorafed::text::read_sentencepiece_model(path);
  REQUIRE(read.pieces.size() == model.pieces.size());
  for (std::size_t i = 0; i < model.pieces.size(); ++i) {
    CHECK(read.pieces[i].text == model.pieces[i].text);
    CHECK(read.pieces[i].score == model.pieces[i].score);
    CHECK(read.pieces[i].type == model.pieces[i].type);
  }
  CHECK_FALSE(read.remove_extra_whitespaces);
  CHECK(read.add_dummy_prefix);
  CHECK_FALSE(read.byte_fallback);
}

TEST_CASE("a SentencePiece model that is malformed or not read by lorafed is refused by name",
          "[tokenizer]") {
  TempFolder folder("sp-refusals");
  const std::string good = lorafed::text::serialize_sentencepiece_model(tiny_model());
  const auto refused = [&](const std::string& bytes) {
    const auto path = folder.write("tokenizer.model", bytes);
    try {
      lorafed::text::read_sentencepiece_model(path);
    } catch (const FormatError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  // Cut anywhere inside a piece, the file is not the format.
  CHECK_THAT(refused(good.substr(0, 7)),
             Contains("tokenizer.model") && Contains("a length past the end of the file"));
  CHECK_THAT(refused(good + "\x0A"), Contains("a number cut off by the end of the file"));
  CHECK_THAT(refused(good + "\x0A\x7F"), Contains("a length past the end of the file"));
  CHECK_THAT(refused(good + std::string(11, '\xFF')), Contains("more than ten bytes"));
  // Piece messages: text (field 1), score (field 2, fixed32), type (field 3).
  CHECK_THAT(refused(with_piece_appended(good, std::string("\x0A\x01x\x15\x00\x00\xC0\x7F", 8))),
             Contains("not a finite number"));  // NaN
  CHECK_THAT(refused(with_piece_appended(good,
                                         "\x0A\x01"
                                         "a")),
             Contains("\"a\" is there twice"));
  CHECK_THAT(refused(with_piece_appended(good, std::string("\x0A\x00", 2))),
             Contains("an empty piece"));
  CHECK_THAT(refused(with_piece_appended(good, "\x0A\x01\xFF")), Contains("not UTF-8"));
  CHECK_THAT(refused(with_piece_appended(good, "\x0A\x01y\x18\x09")),
             Contains("type 9 is not a piece type"));
  CHECK_THAT(refused(with_piece_appended(good, "\x0A\x01y\x18\x05")), Contains("unused piece"));
  CHECK_THAT(refused(with_piece_appended(good, "\x0A\x03<0x\x18\x06")), Contains("<0xXX>"));
  CHECK_THAT(refused(with_piece_appended(good, "\x0A\x05<unk2\x18\x02")),
             Contains("2 unknown pieces"));
  // Trainer spec (field 2): a unigram model (model_type 1); byte fallback without bytes.
  CHECK_THAT(refused(good + "\x12\x02\x18\x01"), Contains("a unigram model"));
  CHECK_THAT(refused(good + "\x12\x03\x98\x02\x01"), Contains("0 byte pieces (256 are required)"));
  // Normalizer spec (field 3) with a character table, as nmt_nfkc has.
  CHECK_THAT(refused(good + "\x1A\x0D\x0A\x08nmt_nfkc\x12\x01\x01"),
             Contains("normalizer \"nmt_nfkc\""));
  CHECK_THAT(refused(std::string(64, '\x0B')), Contains("wire type 3"));
  CHECK(refused(good) == "accepted");
}
