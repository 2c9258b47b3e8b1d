#include "src/elf_check.hpp"

#include <elf.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

namespace lorafed {
namespace {

std::string bytes(std::uint64_t count) {
  return std::to_string(count);
}

// offset + count · entry_size, saturating instead of wrapping around: the
// header fields are untrusted.
std::uint64_t extent_end(std::uint64_t offset, std::uint64_t count, std::uint64_t entry_size) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  if (entry_size != 0 && count > kMax / entry_size) return kMax;
  if (offset > kMax - count * entry_size) return kMax;
  return offset + count * entry_size;
}

template <class T>
bool read_at(std::ifstream& in, std::uint64_t offset, T& value) {
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(&value), sizeof(T));
  return static_cast<bool>(in);
}

std::string truncated(const std::string& part, std::uint64_t end, std::uint64_t size) {
  return "truncated: " + part + " ends at byte " + bytes(end) + " of a " + bytes(size) +
         "-byte file";
}

}  // namespace

std::optional<std::string> elf_file_defect(const std::filesystem::path& path) {
  std::error_code error;
  const std::uint64_t size = std::filesystem::file_size(path, error);
  if (error) return "its size cannot be read: " + error.message();
  std::ifstream in(path, std::ios::binary);
  if (!in) return "it cannot be opened for reading";

  Elf64_Ehdr header{};
  if (size < EI_NIDENT || !read_at(in, 0, header.e_ident) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
    return std::string("it is not an ELF file (no ELF magic number)");
  }
  if (header.e_ident[EI_CLASS] != ELFCLASS64)
    return std::string("it is not a 64-bit ELF file (ELF class ") +
           std::to_string(header.e_ident[EI_CLASS]) + ")";
  const unsigned char native =
      std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;
  if (header.e_ident[EI_DATA] != native)
    return std::string("its ELF byte order is not this machine's");
  if (size < sizeof(Elf64_Ehdr)) return truncated("the ELF header", sizeof(Elf64_Ehdr), size);
  if (!read_at(in, 0, header)) return std::string("its ELF header cannot be read");

  if (header.e_phnum > 0 && header.e_phentsize != sizeof(Elf64_Phdr))
    return "its program headers are " + bytes(header.e_phentsize) + " bytes, not " +
           bytes(sizeof(Elf64_Phdr));
  if (const auto end = extent_end(header.e_phoff, header.e_phnum, sizeof(Elf64_Phdr)); end > size)
    return truncated("the program header table", end, size);

  for (std::uint16_t index = 0; index < header.e_phnum; ++index) {
    Elf64_Phdr segment{};
    if (!read_at(in, header.e_phoff + index * sizeof(Elf64_Phdr), segment))
      return std::string("its program headers cannot be read");
    // Every segment's file bytes, loadable or not (the loader reads PT_DYNAMIC
    // and PT_NOTE through the loadable ones they sit in).
    if (const auto end = extent_end(segment.p_offset, 1, segment.p_filesz); end > size) {
      const std::string kind = segment.p_type == PT_LOAD ? " (loadable)" : "";
      return truncated("segment " + std::to_string(index) + kind, end, size);
    }
  }

  if (header.e_shoff != 0) {
    if (header.e_shentsize != sizeof(Elf64_Shdr))
      return "its section headers are " + bytes(header.e_shentsize) + " bytes, not " +
             bytes(sizeof(Elf64_Shdr));
    // With 0xff00 or more sections e_shnum is 0 and section 0 holds the count.
    std::uint64_t sections = header.e_shnum;
    if (sections == 0) {
      Elf64_Shdr first{};
      if (const auto end = extent_end(header.e_shoff, 1, sizeof(Elf64_Shdr)); end > size)
        return truncated("the section header table", end, size);
      if (!read_at(in, header.e_shoff, first))
        return std::string("its section headers cannot be read");
      sections = first.sh_size;
    }
    if (const auto end = extent_end(header.e_shoff, sections, sizeof(Elf64_Shdr)); end > size)
      return truncated("the section header table", end, size);
  }
  return std::nullopt;
}

}  // namespace lorafed
