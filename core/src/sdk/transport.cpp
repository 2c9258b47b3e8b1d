#include "lorafed/transport.hpp"

#include <cstring>

namespace lorafed {

Channel::~Channel() = default;
Transport::~Transport() = default;

std::optional<ProcessGroup> Transport::process_group() {
  return std::nullopt;
}

Frame Frame::adopt(std::vector<std::byte> bytes) {
  auto owned = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  return Frame{owned->data(), owned->size(), owned};
}

Frame Frame::copy_of(std::span<const std::byte> bytes) {
  return adopt(std::vector<std::byte>(bytes.begin(), bytes.end()));
}

}  // namespace lorafed
