#include "src/client/client_list.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include "lorafed/error.hpp"

namespace lorafed {
namespace {

std::int64_t index_of(std::string_view text, std::string_view item, std::int64_t num_clients) {
  std::int64_t value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw ConfigError("--clients: '" + std::string(item) +
                      "' is not an index or a range FIRST-LAST of indices");
  }
  if (value < 0 || value >= num_clients) {
    throw ConfigError("--clients: " + std::string(text) + " is outside 0.." +
                      std::to_string(num_clients - 1) + " ([federation] num_clients is " +
                      std::to_string(num_clients) + ")");
  }
  return value;
}

}  // namespace

std::vector<std::int64_t> parse_client_list(const std::string& text, std::int64_t num_clients) {
  std::set<std::int64_t> indices;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const std::size_t dash = item.find('-');
    const std::int64_t first = index_of(item.substr(0, dash), item, num_clients);
    const std::int64_t last =
        dash == std::string_view::npos ? first : index_of(item.substr(dash + 1), item, num_clients);
    if (last < first) {
      throw ConfigError("--clients: the range '" + std::string(item) + "' runs backwards");
    }
    for (std::int64_t index = first; index <= last; ++index) {
      if (!indices.insert(index).second) {
        throw ConfigError("--clients: client " + std::to_string(index) + " is named twice");
      }
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return {indices.begin(), indices.end()};
}

}  // namespace lorafed
