#include "lorafed/data/examples.hpp"

#include <ATen/ATen.h>

namespace lorafed::data {

std::int64_t Examples::size() const {
  if (rows.defined()) return rows.size(0);
  return labels.defined() ? labels.size(0) : 0;
}

Examples Examples::batch(const at::Tensor& positions) const {
  const at::Tensor index = rows.defined() ? rows.index_select(0, positions) : positions;
  return Examples{inputs.index_select(0, index), labels.index_select(0, index), {}};
}

Examples Examples::range(std::int64_t begin, std::int64_t end) const {
  if (rows.defined()) return batch(at::arange(begin, end, at::kLong));
  return Examples{inputs.slice(0, begin, end), labels.slice(0, begin, end), {}};
}

}  // namespace lorafed::data
