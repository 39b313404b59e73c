// The KV cache: keys and values of every past position, per layer. The decoder sees only this
// interface, so the contiguous cache here can be replaced by a paged one without touching it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace slm {

enum class KvElement { kF32, kF16 };

class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual int32_t capacity() const = 0;  // positions it can hold
  virtual KvElement element() const = 0;
  // Row of n_head_kv · head_dim elements for (layer, pos). Rows of consecutive positions
  // [0, capacity) of one layer are `row_stride()` bytes apart.
  virtual uint8_t* k_row(int32_t layer, int32_t pos) = 0;
  virtual uint8_t* v_row(int32_t layer, int32_t pos) = 0;
  virtual size_t row_stride() const = 0;
  virtual size_t bytes() const = 0;
};

// One block of memory for capacity × layers × (K and V) rows, allocated up front.
class ContiguousKvCache final : public KvCache {
 public:
  ContiguousKvCache(int32_t n_layer, int32_t capacity, int32_t row_elems, KvElement element);
  int32_t capacity() const override { return capacity_; }
  KvElement element() const override { return element_; }
  uint8_t* k_row(int32_t layer, int32_t pos) override { return row(layer, pos, 0); }
  uint8_t* v_row(int32_t layer, int32_t pos) override { return row(layer, pos, 1); }
  size_t row_stride() const override { return row_bytes_; }
  size_t bytes() const override { return data_.size(); }

 private:
  uint8_t* row(int32_t layer, int32_t pos, int kv) {
    return data_.data() + ((size_t(layer) * 2 + size_t(kv)) * size_t(capacity_) + size_t(pos)) * row_bytes_;
  }
  int32_t capacity_;
  KvElement element_;
  size_t row_bytes_;
  std::vector<uint8_t> data_;
};

}  // namespace slm
