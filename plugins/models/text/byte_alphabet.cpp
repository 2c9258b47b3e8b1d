#include "byte_alphabet.hpp"

#include "utf8.hpp"

namespace lorafed::text {
namespace {

constexpr char32_t kShiftedStart = 0x100;
// Every shifted byte lands below U+0100 + 256.
constexpr std::size_t kSymbolRange = 0x200;

bool stands_for_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct Alphabet {
  std::array<char32_t, 256> symbol_of_byte{};
  std::array<int, kSymbolRange> byte_of{};  // -1: no byte
  std::array<std::string, 256> utf8{};

  Alphabet() {
    byte_of.fill(-1);
    char32_t next_shifted = kShiftedStart;
    for (int byte = 0; byte < 256; ++byte) {
      const char32_t symbol =
          stands_for_itself(byte) ? static_cast<char32_t>(byte) : next_shifted++;
      symbol_of_byte[byte] = symbol;
      byte_of[symbol] = byte;
      utf8[byte] = encode_utf8(symbol);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

}  // namespace

const std::array<std::string, 256>& byte_symbols() {
  return alphabet().utf8;
}

std::optional<std::uint8_t> byte_of_symbol(char32_t symbol) {
  if (symbol >= kSymbolRange) return std::nullopt;
  const int byte = alphabet().byte_of[symbol];
  if (byte < 0) return std::nullopt;
  return static_cast<std::uint8_t>(byte);
}

}  // namespace lorafed::text
