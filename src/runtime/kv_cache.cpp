#include "src/runtime/kv_cache.h"

namespace slm {

ContiguousKvCache::ContiguousKvCache(int32_t n_layer, int32_t capacity, int32_t row_elems,
                                     KvElement element)
    : capacity_(capacity),
      element_(element),
      row_bytes_(size_t(row_elems) * (element == KvElement::kF16 ? 2 : 4)),
      data_(size_t(n_layer) * 2 * size_t(capacity) * row_bytes_) {}

}  // namespace slm
