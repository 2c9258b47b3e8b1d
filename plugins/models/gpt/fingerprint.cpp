#include "fingerprint.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

#include "lorafed/error.hpp"

namespace lorafed::gpt {

void Fnv1a::add(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 1099511628211ULL;
}

void Fnv1a::add(const std::string& text) {
  add(text.data(), text.size() + 1);
}

void Fnv1a::add_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read " + file.string());
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    add(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
}

std::string Fnv1a::hex() const {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace lorafed::gpt
