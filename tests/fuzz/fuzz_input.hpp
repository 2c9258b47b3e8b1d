#pragma once

// How a fuzz input encodes a multi-frame message: byte 0 says how many
// frames follow the first (at most 7), then one little-endian 16-bit end
// position per extra frame, then the bytes of all frames back to back.
// Every input means some message, so the fuzzer never wastes a run.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lorafed/transport.hpp"

namespace lorafed::fuzz {

inline Message message_from_input(const std::uint8_t* data, std::size_t size) {
  Message message;
  if (size == 0) return message;
  const std::size_t cuts = std::min<std::size_t>(data[0] % 8, (size - 1) / 2);
  const std::uint8_t* body = data + 1 + 2 * cuts;
  const std::size_t body_size = size - 1 - 2 * cuts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < cuts; ++i) {
    const std::size_t end =
        std::clamp<std::size_t>(data[1 + 2 * i] | (data[2 + 2 * i] << 8), start, body_size);
    message.frames.push_back(
        Frame::copy_of({reinterpret_cast<const std::byte*>(body + start), end - start}));
    start = end;
  }
  message.frames.push_back(
      Frame::copy_of({reinterpret_cast<const std::byte*>(body + start), body_size - start}));
  return message;
}

// The inverse, for writing a seed corpus (frames must end below 64 KiB).
inline std::string input_from_message(const Message& message) {
  std::string input(1, static_cast<char>(message.frames.size() - 1));
  std::size_t end = 0;
  for (std::size_t i = 0; i + 1 < message.frames.size(); ++i) {
    end += message.frames[i].size;
    input += static_cast<char>(end & 0xff);
    input += static_cast<char>((end >> 8) & 0xff);
  }
  for (const Frame& frame : message.frames) {
    input.append(reinterpret_cast<const char*>(frame.data), frame.size);
  }
  return input;
}

}  // namespace lorafed::fuzz
