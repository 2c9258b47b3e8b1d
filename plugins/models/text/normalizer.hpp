#pragma once
// tokenizer.json's "normalizer": null, NFC (Qwen2) or a Sequence of these.
// Others (Lowercase, NFKC, Replace, ...) are refused by name rather than
// encoded differently from the model's training.

#include <string>
#include <string_view>

#include "json_fields.hpp"

namespace lorafed::text {

class Normalizer {
 public:
  static Normalizer from_json(const JsonFile& file, const nlohmann::json* node,
                              const std::string& where);

  // Whether apply changes anything at all.
  bool active() const { return nfc_; }
  // The text in Unicode Normalization Form C (valid UTF-8 in and out).
  std::string apply(std::string_view text) const;

 private:
  static void read(const JsonFile& file, const nlohmann::json& node, const std::string& where,
                   Normalizer& normalizer);

  bool nfc_ = false;
};

// Unicode Normalization Form C of valid UTF-8, through libunistring.
std::string to_nfc(std::string_view text);

}  // namespace lorafed::text
