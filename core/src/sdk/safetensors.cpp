#include "lorafed/safetensors.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstring>
#include <fstream>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cerrno>

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

namespace lorafed {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors io assumes little endian");

struct DtypeName {
  at::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {at::kFloat, "F32"}, {at::kHalf, "F16"}, {at::kBFloat16, "BF16"}, {at::kDouble, "F64"},
    {at::kLong, "I64"},  {at::kInt, "I32"},  {at::kByte, "U8"},       {at::kBool, "BOOL"},
};

const char* dtype_name(at::ScalarType type) {
  for (const auto& entry : kDtypes) {
    if (entry.type == type) return entry.name;
  }
  throw Error(std::string("safetensors: unsupported tensor dtype ") + at::toString(type));
}

std::optional<at::ScalarType> dtype_from_name(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return entry.type;
  }
  return std::nullopt;
}

// The bytes a tensor of `shape` takes. A FormatError when a dimension is
// negative or the shape's size overflows 64 bits: LibTorch computes sizes and
// strides in int64 (and throws a c10::Error, backtrace and all, when they
// overflow), so every dimension counts, zero-sized ones' neighbours too.
std::uint64_t checked_nbytes(const std::vector<std::int64_t>& shape, std::size_t element_size,
                             const std::string& where) {
  auto extent = static_cast<std::int64_t>(element_size);  // element size × Π max(dim, 1)
  bool empty = false;
  for (const std::int64_t dim : shape) {
    if (dim < 0) throw FormatError(where + " has a negative dimension");
    if (dim == 0) {
      empty = true;
    } else if (__builtin_mul_overflow(extent, dim, &extent)) {
      throw FormatError(where + " is too large: its size overflows 64 bits");
    }
  }
  return empty ? 0 : static_cast<std::uint64_t>(extent);
}

}  // namespace

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw Error("safetensors: tensor '" + name + "' is undefined");
    at::Tensor cpu = tensor.to(at::kCPU).contiguous();
    const std::uint64_t nbytes = cpu.numel() * cpu.element_size();
    header[name] = {{"dtype", dtype_name(cpu.scalar_type())},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(std::move(cpu));
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  write_file_atomically(path, [&](std::ostream& out) {
    const std::uint64_t header_size = header_text.size();
    out.write(reinterpret_cast<const char*>(&header_size), sizeof header_size);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const at::Tensor& tensor : contiguous) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    }
  });
}

namespace {

// One tensor as the header describes it, checked against the file.
struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;  // from the start of the file
  std::uint64_t nbytes = 0;
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

// Reads and checks the header of the `file_size`-byte file `in`: every
// tensor's bytes lie in the data section, match its shape and overlap no
// other tensor's.
Header read_header(std::istream& in, std::uint64_t file_size, const std::string& where) {
  std::uint64_t header_size = 0;
  if (file_size < sizeof header_size)
    throw FormatError(where + " is shorter than its 8-byte header length");
  in.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
  if (header_size > file_size - sizeof header_size) {
    throw FormatError(where + ": header length " + std::to_string(header_size) +
                      " runs past the end of the file");
  }
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  if (!in) throw FormatError(where + ": could not read its header");
  const std::uint64_t data_start = sizeof header_size + header_size;
  const std::uint64_t data_size = file_size - data_start;

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(where + ": header is not valid JSON (" + error.what() + ")");
  }
  if (!json.is_object()) throw FormatError(where + ": header is not a JSON object");

  Header header;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw FormatError(where + ": __metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw FormatError(where + ": metadata '" + key + "' is not a string");
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string tensor_where = where + ", tensor '" + name + "'";
    try {
      const auto dtype = dtype_from_name(entry.at("dtype").get<std::string>());
      if (!dtype)
        throw FormatError(tensor_where + ": unsupported dtype " + entry.at("dtype").dump());
      auto shape = entry.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        throw FormatError(tensor_where + ": data_offsets out of range of the " +
                          std::to_string(data_size) + " data bytes");
      }
      const std::uint64_t nbytes = checked_nbytes(
          shape, at::elementSize(*dtype), tensor_where + ": shape " + entry.at("shape").dump());
      if (nbytes != offsets[1] - offsets[0]) {
        throw FormatError(tensor_where + ": shape needs " + std::to_string(nbytes) +
                          " bytes but data_offsets span " +
                          std::to_string(offsets[1] - offsets[0]));
      }
      header.entries.push_back({name, *dtype, std::move(shape), data_start + offsets[0], nbytes});
    } catch (const nlohmann::json::exception& error) {
      throw FormatError(tensor_where + ": malformed entry (" + error.what() + ")");
    }
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const Entry& entry : header.entries)
    ranges.emplace_back(entry.offset, entry.offset + entry.nbytes);
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) throw FormatError(where + ": tensors overlap");
  }
  return header;
}

std::uint64_t file_size_of(std::ifstream& in) {
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  return size;
}

// A private, copy-on-write mapping of a whole file, unmapped when the last
// tensor viewing it goes.
class Mapping {
 public:
  Mapping(const std::filesystem::path& path, std::uint64_t size, const std::string& where)
      : size_(size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FormatError(where + " cannot be opened: " + std::strerror(errno));
    data_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int mmap_errno = errno;
    ::close(fd);
    if (data_ == MAP_FAILED) {
      throw FormatError(where + " cannot be mapped: " + std::strerror(mmap_errno));
    }
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(data_, size_); }
  char* at(std::uint64_t offset) const { return static_cast<char*>(data_) + offset; }

 private:
  void* data_ = nullptr;
  std::uint64_t size_ = 0;
};

}  // namespace

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  const std::string where = "safetensors file '" + path.string() + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(where + " cannot be opened");
  Header header = read_header(in, file_size_of(in), where);
  SafetensorsFile file{{}, std::move(header.metadata)};
  for (const Entry& entry : header.entries) {
    at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype));
    in.seekg(static_cast<std::streamoff>(entry.offset));
    in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(entry.nbytes));
    if (!in) throw FormatError(where + ", tensor '" + entry.name + "': could not read its bytes");
    file.tensors.emplace(entry.name, std::move(tensor));
  }
  return file;
}

SafetensorsFile map_safetensors(const std::filesystem::path& path) {
  const std::string where = "safetensors file '" + path.string() + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(where + " cannot be opened");
  const std::uint64_t size = file_size_of(in);
  Header header = read_header(in, size, where);
  SafetensorsFile file{{}, std::move(header.metadata)};
  if (header.entries.empty()) return file;
  auto mapping = std::make_shared<Mapping>(path, size, where);
  for (const Entry& entry : header.entries) {
    char* bytes = mapping->at(entry.offset);
    at::Tensor tensor;
    if (reinterpret_cast<std::uintptr_t>(bytes) % at::elementSize(entry.dtype) != 0) {
      tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype));
      std::memcpy(tensor.data_ptr(), bytes, entry.nbytes);
    } else {
      tensor = at::from_blob(
          bytes, entry.shape, [mapping](void*) {}, at::TensorOptions().dtype(entry.dtype));
    }
    file.tensors.emplace(entry.name, std::move(tensor));
  }
  return file;
}

}  // namespace lorafed
