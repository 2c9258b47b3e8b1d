#include "lorafed/named_tensors.hpp"

#include <c10/util/StringUtil.h>

#include "lorafed/error.hpp"

namespace lorafed {

void require_same_layout(const NamedTensors& expected, const NamedTensors& got,
                         const std::string& what) {
  for (const auto& [name, tensor] : got) {
    const auto found = expected.find(name);
    if (found == expected.end()) throw FormatError(what + ": unexpected tensor '" + name + "'");
    if (!found->second.sizes().equals(tensor.sizes())) {
      throw FormatError(what + ": '" + name + "' has shape " + c10::str(tensor.sizes()) +
                        " where " + c10::str(found->second.sizes()) + " is expected");
    }
    if (found->second.scalar_type() != tensor.scalar_type()) {
      throw FormatError(what + ": '" + name + "' is " + c10::toString(tensor.scalar_type()) +
                        " where " + c10::toString(found->second.scalar_type()) + " is expected");
    }
  }
  for (const auto& [name, tensor] : expected) {
    if (!got.contains(name)) throw FormatError(what + ": tensor '" + name + "' is missing");
  }
}

}  // namespace lorafed
