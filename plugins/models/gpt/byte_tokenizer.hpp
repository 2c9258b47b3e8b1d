#pragma once
// The default tokenizer: one token per byte (0..255), and 256 for
// <|endoftext|>, which separates documents and ends every answer.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lorafed::gpt {

constexpr std::int64_t kByteVocabulary = 257;
constexpr std::int64_t kEndOfText = 256;

inline std::vector<std::int64_t> encode_bytes(std::string_view text) {
  std::vector<std::int64_t> tokens;
  tokens.reserve(text.size());
  for (unsigned char c : text) tokens.push_back(c);
  return tokens;
}

// Bytes up to the first token that is not one (<|endoftext|>).
inline std::string decode_bytes(const std::vector<std::int64_t>& tokens) {
  std::string text;
  for (std::int64_t token : tokens) {
    if (token < 0 || token > 255) break;
    text.push_back(static_cast<char>(token));
  }
  return text;
}

}  // namespace lorafed::gpt
