#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lorafed/transport.hpp"
#include "src/wire/envelope_reader.hpp"
#include "src/wire/messages.hpp"

namespace lorafed::wire {

struct EncodeOptions {
  std::size_t max_frame_bytes = 4u << 20;  // larger tensors travel as several frames
  WireDtype dtype = WireDtype::kFloat32;
};

// Encodes an envelope as frame 0 plus tensor frames. Tensors at least
// `max_frame_bytes / 16` long travel zero-copy as slices of their own
// storage (float32 wire dtype); smaller ones are packed together.
Message encode(const Envelope& envelope, const EncodeOptions& options = {});

// check_message(), then the tensors, decoded to float32; a tensor that lies
// within one suitably aligned frame is not copied.
Envelope decode(const Message& message, const DecodeLimits& limits = {});

// Bytes of all frames of a message (for traffic accounting).
std::uint64_t message_bytes(const Message& message);

WireDtype wire_dtype_from_name(const std::string& name);  // "float32", "float16", "bfloat16"

}  // namespace lorafed::wire
