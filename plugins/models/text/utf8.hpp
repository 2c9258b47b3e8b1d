#pragma once
// The little UTF-8 the tokenizers need: encoding a code point, stepping
// through valid text character by character, and finding where text stops
// being valid.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lorafed::text {

std::string encode_utf8(char32_t code_point);

// The length in bytes of the character starting at text[offset], which must
// be valid UTF-8 (checked before with first_invalid_utf8).
std::size_t utf8_length_at(std::string_view text, std::size_t offset);

// The character starting at text[offset] (valid UTF-8, as above).
char32_t code_point_at(std::string_view text, std::size_t offset);

// The offset of the first byte that does not belong to well-formed UTF-8
// (no overlong forms, surrogates or code points past U+10FFFF), if any.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

// Throws lorafed::FormatError naming `what` when text is not valid UTF-8.
void require_utf8(std::string_view text, const std::string& what);

}  // namespace lorafed::text
