#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lorafed/error.hpp"
#include "lorafed/transport.hpp"
#include "src/wire/messages.hpp"

namespace lorafed::wire {

enum class WireDtype : std::uint8_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

struct EncodeOptions {
  std::size_t max_frame_bytes = 4u << 20;  // DESIGN §4: 1–4 MiB frames move fastest over tcp
  WireDtype dtype = WireDtype::kFloat32;
};

// Limits a receiver enforces before it allocates or trusts anything.
struct DecodeLimits {
  std::size_t max_frame_bytes = 4u << 20;
  std::uint64_t max_message_bytes = 1ull << 32;  // sum of all tensor bytes
  std::size_t max_tensors = 4096;
  std::size_t max_rank_dims = 8;
};

// Encodes an envelope as frame 0 plus tensor frames. Tensors at least
// `max_frame_bytes / 16` long travel zero-copy as slices of their own
// storage (float32 wire dtype); smaller ones are packed together.
Message encode(const Envelope& envelope, const EncodeOptions& options = {});

// Verifies frame 0 with the FlatBuffers Verifier, then every tensor entry
// against the frames and `limits`; throws lorafed::FormatError saying what
// is wrong. Tensors are decoded to float32; a tensor that lies within one
// suitably aligned frame is not copied.
Envelope decode(const Message& message, const DecodeLimits& limits = {});

// What a relay needs to route a message without reading its tensors.
struct Header {
  std::uint32_t round = 0;
  std::string sender;
  std::string recipient;
  BodyKind kind = BodyKind::kHeartbeat;
};

// The checks of decode() that need only frame 0 and the frame sizes
// (verification, version, frame count, frame size limit); throws
// DecodeError. The tensor entries are not read.
Header decode_header(const Message& message, const DecodeLimits& limits = {});

// Bytes of all frames of a message (for traffic accounting).
std::uint64_t message_bytes(const Message& message);

WireDtype wire_dtype_from_name(const std::string& name);  // "float32", "float16", "bfloat16"

}  // namespace lorafed::wire

namespace lorafed::wire {

// A message that cannot be decoded, with the Error code to answer it with.
class DecodeError : public FormatError {
 public:
  DecodeError(ErrorCode code, const std::string& message) : FormatError(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace lorafed::wire
