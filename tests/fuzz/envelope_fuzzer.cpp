// libFuzzer target: what a receiver checks before it trusts a message.
//
// 1. The envelope (src/wire/envelope_reader.hpp): FlatBuffers verification,
//    its version and frame count, the body, and every tensor entry against
//    the frames and the limits (dtype, dimensions, overflow, nbytes, frame
//    bounds, duplicates, totals). Both entry points are run: decode_header
//    (the broker's) and check_message (the server's and the clients', before
//    any tensor byte is read).
// 2. The tensors, made as decode() makes them, through the server's checks
//    on a client's update before it is aggregated
//    (src/server/update_checks.hpp).
//
// Each step may refuse an input only by throwing lorafed::FormatError
// (DecodeError is one); a crash, a sanitizer report or another exception is
// a bug.
//
// Inputs are messages in the format of fuzz_input.hpp; lorafed_fuzz_seeds
// writes a starting corpus of valid ones, whose adapters fit the spec of
// update_checks.hpp.
// scripts/fuzz.sh builds and runs it.
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>

#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "src/wire/envelope_reader.hpp"
#include "update_checks.hpp"

namespace {

namespace wire = lorafed::wire;

// A checked tensor as decode() makes it: float32, whatever the wire dtype.
// (decode() itself needs LibTorch's operators, which Clang cannot compile.)
at::Tensor read_tensor(const lorafed::Message& message, const wire::TensorLocation& location) {
  static float no_elements;
  if (location.nbytes == 0) return at::from_blob(&no_elements, location.shape, at::kFloat);
  auto* bytes = new std::vector<std::byte>(location.nbytes);
  wire::copy_tensor_bytes(message, location, bytes->data());
  const at::ScalarType type = location.dtype == wire::WireDtype::kFloat32   ? at::kFloat
                              : location.dtype == wire::WireDtype::kFloat16 ? at::kHalf
                                                                            : at::kBFloat16;
  return at::from_blob(
             bytes->data(), location.shape, [bytes](void*) { delete bytes; }, type)
      .to(at::kFloat);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const lorafed::Message message = lorafed::fuzz::message_from_input(data, size);
  wire::DecodeLimits limits;
  limits.max_frame_bytes = 1 << 16;
  limits.max_message_bytes = 1 << 20;
  limits.max_tensors = 64;
  try {
    const wire::Header header = wire::decode_header(message, limits);
    const wire::CheckedMessage checked = wire::check_message(message, limits);
    // What decode() relies on: every checked byte range lies within the frames.
    for (const auto& tensor : checked.tensors) {
      std::uint64_t available = 0;
      if (tensor.nbytes == 0) continue;
      available = message.frames.at(tensor.frame).size - tensor.offset;
      for (std::size_t f = tensor.frame + 1; f < message.frames.size(); ++f) {
        available += message.frames[f].size;
      }
      if (available < tensor.nbytes || header.kind != checked.header.kind) __builtin_trap();
    }
    lorafed::NamedTensors tensors;
    for (const auto& location : checked.tensors) {
      tensors.emplace(location.name, read_tensor(message, location));
    }
    lorafed::fuzz::check_update(std::move(tensors), checked.body);
  } catch (const lorafed::FormatError&) {
    // Refused: what hostile input should get.
  }
  return 0;
}
