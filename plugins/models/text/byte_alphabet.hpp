#pragma once
// GPT-2's byte-to-unicode table (bytes_to_unicode in its encoder.py): every
// byte gets a printable character, so a byte-level BPE's vocabulary is text.
// Printable Latin-1 bytes stand for themselves; the other 68 (controls,
// space, soft hyphen, ...) take U+0100 onwards in byte order, so the space
// is "Ġ" (U+0120) and the newline "Ċ" (U+010A).

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace lorafed::text {

// The character standing for each byte, as UTF-8.
const std::array<std::string, 256>& byte_symbols();

// The byte a character stands for, if it stands for one.
std::optional<std::uint8_t> byte_of_symbol(char32_t symbol);

}  // namespace lorafed::text
