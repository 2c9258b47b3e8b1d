#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lorafed {

// The client indices `lorafed client --clients` names: a comma-separated
// list of indices and inclusive ranges, e.g. "0-249" or "0,3,10-19", each in
// 0 .. num_clients-1, none twice. Returned in increasing order. Throws
// ConfigError saying what is wrong.
std::vector<std::int64_t> parse_client_list(const std::string& text, std::int64_t num_clients);

}  // namespace lorafed
