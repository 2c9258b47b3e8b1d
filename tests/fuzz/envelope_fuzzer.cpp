// libFuzzer target: what a receiver checks before it trusts a message
// (src/wire/envelope_reader.hpp): FlatBuffers verification of the envelope,
// its version and frame count, the body, and every tensor entry against the
// frames and the limits (dtype, dimensions, overflow, nbytes, frame bounds,
// duplicates, totals). Both entry points are run: decode_header (the
// broker's) and check_message (the server's and the clients', before any
// tensor byte is read). They may refuse an input only by throwing
// DecodeError; a crash, a sanitizer report or another exception is a bug.
//
// Inputs are messages in the format of fuzz_input.hpp; lorafed_fuzz_seeds
// writes a starting corpus of valid ones. scripts/fuzz.sh builds and runs it.
#include <cstdint>

#include "fuzz_input.hpp"
#include "src/wire/envelope_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const lorafed::Message message = lorafed::fuzz::message_from_input(data, size);
  lorafed::wire::DecodeLimits limits;
  limits.max_frame_bytes = 1 << 16;
  limits.max_message_bytes = 1 << 20;
  limits.max_tensors = 64;
  try {
    const lorafed::wire::Header header = lorafed::wire::decode_header(message, limits);
    const lorafed::wire::CheckedMessage checked = lorafed::wire::check_message(message, limits);
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
  } catch (const lorafed::wire::DecodeError&) {
    // Refused: what hostile input should get.
  }
  return 0;
}
