#include "src/wire/envelope_reader.hpp"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "lorafed/version.hpp"
#include "lorafed_generated.h"
#include "src/wire/bodies.hpp"
#include "src/wire/text.hpp"

namespace lorafed::wire {
namespace fb = lorafed::fb;

void malformed(const std::string& what) {
  throw DecodeError(ErrorCode::kMalformed, what);
}

namespace {

// Frame 0 checked and read in place; `aligned_copy` holds it when the frame
// itself is not aligned enough for FlatBuffers, and must outlive the result.
const fb::Envelope& verified_envelope(const Message& message, const DecodeLimits& limits,
                                      std::vector<std::byte>& aligned_copy) {
  if (message.frames.empty()) malformed("message has no frames");
  const Frame& head = message.frames[0];
  for (std::size_t i = 0; i < message.frames.size(); ++i) {
    if (message.frames[i].size > limits.max_frame_bytes) {
      throw DecodeError(ErrorCode::kTooLarge, "frame " + std::to_string(i) + " has " +
                                                  std::to_string(message.frames[i].size) +
                                                  " bytes, over the limit of " +
                                                  std::to_string(limits.max_frame_bytes));
    }
  }
  // FlatBuffers reads scalars in place, so the envelope must be aligned;
  // received frames normally are, a copy makes sure.
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(head.data);
  if (reinterpret_cast<std::uintptr_t>(bytes) % alignof(std::uint64_t) != 0) {
    aligned_copy.assign(head.data, head.data + head.size);
    bytes = reinterpret_cast<const std::uint8_t*>(aligned_copy.data());
  }
  flatbuffers::Verifier verifier(bytes, head.size, /*max_depth=*/32, /*max_tables=*/100000);
  if (!fb::VerifyEnvelopeBuffer(verifier)) malformed("envelope failed FlatBuffers verification");
  const fb::Envelope& envelope = *fb::GetEnvelope(bytes);
  if (envelope.protocol_version() != kProtocolVersion) {
    throw DecodeError(ErrorCode::kUnsupportedVersion,
                      "protocol version " + std::to_string(envelope.protocol_version()) +
                          " is not supported (this build speaks " +
                          std::to_string(kProtocolVersion) + ")");
  }
  if (envelope.frame_count() != message.frames.size()) {
    malformed("envelope announces " + std::to_string(envelope.frame_count()) + " frames but " +
              std::to_string(message.frames.size()) + " arrived");
  }
  return envelope;
}

std::size_t element_size(WireDtype dtype) {
  return dtype == WireDtype::kFloat32 ? 4 : 2;
}

// Checks one tensor entry against the frames and the limits; `total_bytes`
// accumulates over the message.
TensorLocation check_entry(const Message& message, const fb::TensorEntry& entry,
                           const DecodeLimits& limits, std::uint64_t& total_bytes) {
  TensorLocation location;
  location.name = read_text(entry.name(), "a tensor name");
  const std::string where = "tensor '" + location.name + "'";
  if (entry.dtype() < fb::DType::Float32 || entry.dtype() > fb::DType::BFloat16) {
    malformed(where + " has an unknown dtype");
  }
  location.dtype = static_cast<WireDtype>(entry.dtype());
  const auto* shape_vector = entry.shape();
  if (shape_vector->size() > limits.max_rank_dims) malformed(where + " has too many dimensions");
  std::uint64_t numel = 1;
  // FlatBuffers' verifier aligns a vector to its 4-byte length only, so a
  // hostile envelope can place these 8-byte elements off their alignment:
  // copy each out instead of reading it in place.
  const std::uint8_t* dims = shape_vector->Data();
  for (flatbuffers::uoffset_t i = 0; i < shape_vector->size(); ++i) {
    std::int64_t dim = 0;
    std::memcpy(&dim, dims + i * sizeof dim, sizeof dim);
    dim = flatbuffers::EndianScalar(dim);
    if (dim < 0) malformed(where + " has a negative dimension");
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(dim), &numel)) {
      throw DecodeError(ErrorCode::kTooLarge, where + " has an impossible shape");
    }
    location.shape.push_back(dim);
  }
  if (__builtin_mul_overflow(numel, element_size(location.dtype), &location.nbytes) ||
      location.nbytes != entry.nbytes()) {
    malformed(where + ": nbytes " + std::to_string(entry.nbytes()) +
              " does not match its shape and dtype");
  }
  total_bytes += location.nbytes;
  if (total_bytes > limits.max_message_bytes) {
    throw DecodeError(ErrorCode::kTooLarge, "message tensors exceed the limit of " +
                                                std::to_string(limits.max_message_bytes) +
                                                " bytes");
  }
  if (location.nbytes == 0) return location;
  location.frame = entry.frame();
  location.offset = entry.offset();
  if (location.frame < 1 || location.frame >= message.frames.size())
    malformed(where + " points to a frame that does not exist");
  if (location.offset > message.frames[location.frame].size)
    malformed(where + " starts past the end of its frame");
  // The bytes from there to the end of the last frame must hold it.
  std::uint64_t available = message.frames[location.frame].size - location.offset;
  for (std::size_t frame = location.frame + 1;
       available < location.nbytes && frame < message.frames.size(); ++frame) {
    available += message.frames[frame].size;
  }
  if (available < location.nbytes) malformed(where + " runs past the last frame");
  return location;
}

}  // namespace

Header decode_header(const Message& message, const DecodeLimits& limits) {
  std::vector<std::byte> aligned_copy;
  const fb::Envelope& envelope = verified_envelope(message, limits, aligned_copy);
  const auto type = static_cast<int>(envelope.body_type());
  if (type < static_cast<int>(fb::Body::Register) || type > static_cast<int>(fb::Body::Error)) {
    malformed("unknown message body type");
  }
  Header header{envelope.round(), read_text(envelope.sender(), "the sender"),
                read_text(envelope.recipient(), "the recipient"),
                static_cast<BodyKind>(type - static_cast<int>(fb::Body::Register))};
  // A relay judges an Error by its code (a client may not report another lost).
  if (const auto* error = envelope.body_as_Error()) {
    header.error_code = static_cast<ErrorCode>(error->code());
  }
  return header;
}

CheckedMessage check_message(const Message& message, const DecodeLimits& limits) {
  std::vector<std::byte> aligned_copy;
  const fb::Envelope& envelope = verified_envelope(message, limits, aligned_copy);
  CheckedMessage checked;
  checked.header = Header{envelope.round(), read_text(envelope.sender(), "the sender"),
                          read_text(envelope.recipient(), "the recipient"), BodyKind::kHeartbeat};
  checked.body = read_body(envelope);
  checked.header.kind = kind_of(checked.body);
  if (const auto* entries = envelope.tensors()) {
    if (entries->size() > limits.max_tensors) {
      throw DecodeError(ErrorCode::kTooLarge,
                        "message has " + std::to_string(entries->size()) + " tensors");
    }
    std::set<std::string> names;
    std::uint64_t total_bytes = 0;
    for (const fb::TensorEntry* entry : *entries) {
      TensorLocation location = check_entry(message, *entry, limits, total_bytes);
      if (!names.insert(location.name).second) {
        malformed("tensor '" + location.name + "' appears twice");
      }
      checked.tensors.push_back(std::move(location));
    }
  }
  return checked;
}

void copy_tensor_bytes(const Message& message, const TensorLocation& location, std::byte* out) {
  std::uint64_t done = 0;
  std::size_t frame = location.frame;
  std::size_t offset = location.offset;
  while (done < location.nbytes) {  // check_message made sure the frames hold it
    const Frame& part = message.frames[frame];
    const std::uint64_t take = std::min<std::uint64_t>(location.nbytes - done, part.size - offset);
    // An empty frame's data may be null, which memcpy must not be given.
    if (take > 0) std::memcpy(out + done, part.data + offset, take);
    done += take;
    ++frame;
    offset = 0;
  }
}

}  // namespace lorafed::wire
