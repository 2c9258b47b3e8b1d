#include "normalizer.hpp"

#include <uninorm.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "lorafed/error.hpp"

namespace lorafed::text {

std::string to_nfc(std::string_view text) {
  std::size_t length = 0;
  const std::unique_ptr<std::uint8_t, decltype(&std::free)> normalized(
      u8_normalize(UNINORM_NFC, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(),
                   nullptr, &length),
      &std::free);
  if (!normalized) {
    throw Error(std::string("NFC normalization failed: ") + std::strerror(errno));
  }
  return {reinterpret_cast<const char*>(normalized.get()), length};
}

void Normalizer::read(const JsonFile& file, const nlohmann::json& node, const std::string& where,
                      Normalizer& normalizer) {
  const std::string type =
      file.string_value(file.member(node, "type", where), field_path(where, "type"));
  if (type == "NFC") {
    normalizer.nfc_ = true;
  } else if (type == "Sequence") {
    const std::string list_path = field_path(where, "normalizers");
    const nlohmann::json& list = file.member(node, "normalizers", where);
    file.require_array(list, list_path);
    for (std::size_t index = 0; index < list.size(); ++index) {
      read(file, list[index], element_path(list_path, index), normalizer);
    }
  } else {
    file.fail(field_path(where, "type"),
              "the normalizer \"" + type +
                  "\" is not supported (lorafed reads none, NFC, and Sequence of these)");
  }
}

Normalizer Normalizer::from_json(const JsonFile& file, const nlohmann::json* node,
                                 const std::string& where) {
  Normalizer normalizer;
  if (node != nullptr) read(file, *node, where, normalizer);
  return normalizer;
}

std::string Normalizer::apply(std::string_view text) const {
  if (!nfc_ || text.empty()) return std::string(text);
  return to_nfc(text);
}

}  // namespace lorafed::text
