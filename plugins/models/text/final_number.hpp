#pragma once
// GSM8K's scoring: an answer is right when its final number equals the
// reference's (README.md, "Instruction datasets").

#include <optional>
#include <string>
#include <string_view>

namespace lorafed::text {

// The number after the last "####" of a GSM8K reference answer, normalised
// (normalise_number); nullopt when there is none.
std::optional<std::string> gsm8k_reference_number(std::string_view answer);

// A generated answer's final number: the first number after its last
// "####" when it writes one, else the last number in it; nullopt when it
// holds none.
std::optional<std::string> final_number(std::string_view text);

// A number as GSM8K compares them: thousands separators dropped ("1,234" →
// "1234"), a leading '+' dropped, trailing zeros of a decimal fraction and
// a bare point dropped ("5.50" → "5.5", "7.00" → "7"), "-0" → "0".
// `number` is what the scanners find: an optional sign, digits with
// optional commas, an optional fraction.
std::string normalise_number(std::string_view number);

}  // namespace lorafed::text
