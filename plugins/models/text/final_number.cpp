#include "final_number.hpp"

#include <vector>

namespace lorafed::text {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The numbers of `text` in order: [-+]?digits with commas between digit
// groups, then an optional '.' and digits. A comma or point not followed by
// a digit ends the number ("3, 4" is two numbers; "7." is 7).
std::vector<std::string_view> numbers(std::string_view text) {
  std::vector<std::string_view> found;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t begin = i;
    // A sign, unless it is an operator between two numbers ("5-3").
    if (begin > 0 && (text[begin - 1] == '-' || text[begin - 1] == '+') &&
        (begin < 2 || !is_digit(text[begin - 2])))
      --begin;
    while (i < text.size() &&
           (is_digit(text[i]) || (text[i] == ',' && i + 1 < text.size() && is_digit(text[i + 1]))))
      ++i;
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
    }
    found.push_back(text.substr(begin, i - begin));
  }
  return found;
}

}  // namespace

std::string normalise_number(std::string_view number) {
  std::string out;
  for (char c : number) {
    if (c != ',' && c != '+') out.push_back(c);
  }
  if (out.find('.') != std::string::npos) {
    while (!out.empty() && out.back() == '0') out.pop_back();
    if (!out.empty() && out.back() == '.') out.pop_back();
  }
  // Leading zeros of the integer part ("007" → "7"), keeping one digit.
  const std::size_t sign = !out.empty() && out[0] == '-' ? 1 : 0;
  std::size_t zeros = sign;
  while (zeros + 1 < out.size() && out[zeros] == '0' && is_digit(out[zeros + 1])) ++zeros;
  out.erase(sign, zeros - sign);
  if (out == "-0") out = "0";
  return out;
}

std::optional<std::string> gsm8k_reference_number(std::string_view answer) {
  const std::size_t mark = answer.rfind("####");
  if (mark == std::string_view::npos) return std::nullopt;
  const auto after = numbers(answer.substr(mark + 4));
  if (after.empty()) return std::nullopt;
  return normalise_number(after.front());
}

std::optional<std::string> final_number(std::string_view text) {
  if (text.rfind("####") != std::string_view::npos) {
    if (auto marked = gsm8k_reference_number(text)) return marked;
  }
  const auto all = numbers(text);
  if (all.empty()) return std::nullopt;
  return normalise_number(all.back());
}

}  // namespace lorafed::text
