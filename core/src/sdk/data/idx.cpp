#include "lorafed/data/idx.hpp"

#include <ATen/ATen.h>
#include <zlib.h>

#include <array>
#include <memory>

#include "lorafed/error.hpp"

namespace lorafed::data {

at::Tensor read_idx(const std::filesystem::path& path) {
  // gzread reads plain files too, so one path serves .gz and uncompressed IDX.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw FormatError("cannot open IDX file '" + path.string() + "'");
  auto read_exactly = [&](void* buffer, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const int n = gzread(file.get(), static_cast<char*>(buffer) + done,
                           static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30)));
      if (n <= 0) throw FormatError("IDX file '" + path.string() + "' ends early");
      done += static_cast<std::size_t>(n);
    }
  };
  std::array<unsigned char, 4> magic{};
  read_exactly(magic.data(), magic.size());
  // Magic: two zero bytes, a type code (0x08 = unsigned byte), the rank.
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4) {
    throw FormatError("'" + path.string() + "' is not an unsigned-byte IDX file");
  }
  std::vector<std::int64_t> shape;
  std::int64_t numel = 1;
  for (int i = 0; i < magic[3]; ++i) {
    std::array<unsigned char, 4> be{};
    read_exactly(be.data(), be.size());
    const std::int64_t dim = (std::int64_t{be[0]} << 24) | (be[1] << 16) | (be[2] << 8) | be[3];
    shape.push_back(dim);
    numel *= dim;
  }
  at::Tensor tensor = at::empty(shape, at::kByte);
  read_exactly(tensor.data_ptr(), static_cast<std::size_t>(numel));
  return tensor;
}

}  // namespace lorafed::data
