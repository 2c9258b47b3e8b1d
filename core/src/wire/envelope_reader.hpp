#pragma once

// Reading a received message without trusting it: everything the codec
// checks before it reads a tensor byte, free of LibTorch's operators so that
// the broker's routing and the fuzz target (tests/fuzz) need only this.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/error.hpp"
#include "lorafed/transport.hpp"
#include "src/wire/messages.hpp"

namespace lorafed::wire {

enum class WireDtype : std::uint8_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Limits a receiver enforces before it allocates or trusts anything.
struct DecodeLimits {
  std::size_t max_frame_bytes = 4u << 20;
  std::uint64_t max_message_bytes = 1ull << 32;  // sum of all tensor bytes
  std::size_t max_tensors = 4096;
  std::size_t max_rank_dims = 8;
};

// A message that cannot be decoded, with the Error code to answer it with.
class DecodeError : public FormatError {
 public:
  DecodeError(ErrorCode code, const std::string& message) : FormatError(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Throws DecodeError(kMalformed, what): a message that breaks the schema.
[[noreturn]] void malformed(const std::string& what);

// What a relay needs to route a message without reading its tensors.
struct Header {
  std::uint32_t round = 0;
  std::string sender;
  std::string recipient;
  BodyKind kind = BodyKind::kHeartbeat;
  ErrorCode error_code = ErrorCode::kUnknown;  // of an Error body
};

// The checks of decode() that need only frame 0 and the frame sizes
// (verification, version, frame count, frame size limit); throws
// DecodeError. The tensor entries are not read.
Header decode_header(const Message& message, const DecodeLimits& limits = {});

// Where a checked tensor's bytes are: from `offset` in frame `frame` on,
// continuing at offset 0 of the following frames.
struct TensorLocation {
  std::string name;
  WireDtype dtype = WireDtype::kFloat32;
  std::vector<std::int64_t> shape;
  std::uint64_t nbytes = 0;
  std::size_t frame = 0;
  std::size_t offset = 0;
};

struct CheckedMessage {
  Header header;
  Body body;
  std::vector<TensorLocation> tensors;  // in the order of the tensor table
};

// Verifies frame 0 with the FlatBuffers Verifier, then every tensor entry
// against the frames and `limits` (a known dtype, at most max_rank_dims
// non-negative dimensions without overflow, nbytes matching shape and dtype,
// frames that exist and hold all its bytes, no duplicate names, at most
// max_tensors and max_message_bytes in all); throws DecodeError saying what
// is wrong.
CheckedMessage check_message(const Message& message, const DecodeLimits& limits = {});

// Copies the location.nbytes bytes of a tensor that check_message() located
// to `out`, across as many frames as they span.
void copy_tensor_bytes(const Message& message, const TensorLocation& location, std::byte* out);

}  // namespace lorafed::wire
