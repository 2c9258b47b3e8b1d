#include "utf8.hpp"

#include "lorafed/error.hpp"

namespace lorafed::text {
namespace {

unsigned byte_at(std::string_view text, std::size_t offset) {
  return static_cast<unsigned char>(text[offset]);
}

bool is_continuation(unsigned byte) {
  return (byte & 0xC0U) == 0x80U;
}

// The length of a well-formed sequence at offset, or 0.
std::size_t well_formed_length(std::string_view text, std::size_t offset) {
  const unsigned lead = byte_at(text, offset);
  if (lead < 0x80U) return 1;
  std::size_t length = 0;
  char32_t code_point = 0;
  char32_t smallest = 0;
  if ((lead & 0xE0U) == 0xC0U) {
    length = 2, code_point = lead & 0x1FU, smallest = 0x80;
  } else if ((lead & 0xF0U) == 0xE0U) {
    length = 3, code_point = lead & 0x0FU, smallest = 0x800;
  } else if ((lead & 0xF8U) == 0xF0U) {
    length = 4, code_point = lead & 0x07U, smallest = 0x10000;
  } else {
    return 0;
  }
  if (offset + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned byte = byte_at(text, offset + i);
    if (!is_continuation(byte)) return 0;
    code_point = (code_point << 6U) | (byte & 0x3FU);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < smallest || surrogate || code_point > 0x10FFFF) return 0;
  return length;
}

}  // namespace

std::string encode_utf8(char32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0U | (code_point >> 6U)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0U | (code_point >> 12U)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  } else {
    out.push_back(static_cast<char>(0xF0U | (code_point >> 18U)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 12U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  }
  return out;
}

std::size_t utf8_length_at(std::string_view text, std::size_t offset) {
  const unsigned lead = byte_at(text, offset);
  if (lead < 0x80U) return 1;
  if ((lead & 0xE0U) == 0xC0U) return 2;
  if ((lead & 0xF0U) == 0xE0U) return 3;
  return 4;
}

char32_t code_point_at(std::string_view text, std::size_t offset) {
  const std::size_t length = utf8_length_at(text, offset);
  const unsigned lead = byte_at(text, offset);
  if (length == 1) return lead;
  const unsigned lead_bits = length == 2 ? 0x1FU : length == 3 ? 0x0FU : 0x07U;
  char32_t code_point = lead & lead_bits;
  for (std::size_t i = 1; i < length; ++i) {
    code_point = (code_point << 6U) | (byte_at(text, offset + i) & 0x3FU);
  }
  return code_point;
}

std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t length = well_formed_length(text, offset);
    if (length == 0) return offset;
    offset += length;
  }
  return std::nullopt;
}

void require_utf8(std::string_view text, const std::string& what) {
  if (const auto offset = first_invalid_utf8(text)) {
    throw FormatError(what + " is not valid UTF-8 (byte " + std::to_string(*offset) +
                      "); tokenizers take Unicode text");
  }
}

}  // namespace lorafed::text
