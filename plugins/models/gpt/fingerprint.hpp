#pragma once
// FNV-1a, 64 bits: what identifies a base model's weights in its model id
// and its cache file name (not a cryptographic hash: it tells versions
// apart, it does not stop a forger).

#include <cstdint>
#include <filesystem>
#include <string>

namespace lorafed::gpt {

struct Fnv1a {
  std::uint64_t hash = 1469598103934665603ULL;
  void add(const void* data, std::size_t size);
  void add(const std::string& text);  // with its terminating zero, so "a"+"b" ≠ "ab"
  void add_file(const std::filesystem::path& file);  // every byte; Error when unreadable
  std::string hex() const;
};

}  // namespace lorafed::gpt
