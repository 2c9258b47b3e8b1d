#pragma once

// Each wire body converted to and from its lorafed.fbs table, both ways side
// by side in bodies.cpp (as Flower's serde pairs them), free of LibTorch so
// the fuzz target compiles it. The schema's union and Body agree at compile
// time (static_asserts there).
#include <flatbuffers/flatbuffers.h>

#include <utility>

#include "lorafed_generated.h"
#include "src/wire/messages.hpp"

namespace lorafed::wire {

// The union tag and table of `body`, built into `builder`.
std::pair<fb::Body, flatbuffers::Offset<void>> build_body(flatbuffers::FlatBufferBuilder& builder,
                                                          const Body& body);
// The body of a verified envelope; DecodeError(kMalformed) for an unknown
// union tag or config value kind.
Body read_body(const fb::Envelope& envelope);

}  // namespace lorafed::wire
