#pragma once

// Every string a peer sends is read through here: names and texts end up
// in logs, JSON records and file names, and nlohmann::json refuses to write
// a string that is not UTF-8, so one hostile byte would stop the server.
#include <flatbuffers/flatbuffers.h>

#include <string>
#include <string_view>

namespace lorafed::wire {

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF).
bool is_utf8(std::string_view text);

// The string, "" when absent; DecodeError(kMalformed) naming `what` when it
// is not UTF-8.
std::string read_text(const flatbuffers::String* text, const char* what);

}  // namespace lorafed::wire
