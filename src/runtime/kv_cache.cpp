#include "src/runtime/kv_cache.h"

namespace slm {

ContiguousKvCache::ContiguousKvCache(int32_t n_layer, int32_t capacity, int32_t row_elems,
                                     KvElement element)
    : capacity_(capacity),
      element_(element),
      row_bytes_(kv_row_bytes(element, size_t(row_elems))),
      data_(size_t(n_layer) * 2 * size_t(capacity) * row_bytes_),
      bases_(size_t(n_layer) * 2) {
  for (size_t i = 0; i < bases_.size(); ++i) {
    bases_[i] = data_.data() + i * size_t(capacity_) * row_bytes_;
  }
}

}  // namespace slm
