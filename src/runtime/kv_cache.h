// The KV cache: keys and values of every past position, per layer. The decoder sees only this
// interface; ContiguousKvCache is one block of memory, PagedKvCache (paged_kv_cache.h) a sequence
// of fixed-size blocks from a shared pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/ref/ops.h"

namespace slm {

// How cached keys and values are stored: floats, halves, or ggml Q8_0 blocks (32 elements in
// 34 bytes: an fp16 scale and 32 int8 quants; each head's row is whole blocks, so head_dim must
// be a multiple of 32).
enum class KvElement { kF32, kF16, kQ8_0 };

// Bytes of a row of n elements (Q8_0: n a multiple of 32).
inline size_t kv_row_bytes(KvElement e, size_t n) {
  switch (e) {
    case KvElement::kF16: return n * 2;
    case KvElement::kQ8_0: return n / 32 * 34;
    case KvElement::kF32: break;
  }
  return n * 4;
}

inline const char* kv_element_name(KvElement e) {
  switch (e) {
    case KvElement::kF16: return "f16";
    case KvElement::kQ8_0: return "q8_0";
    case KvElement::kF32: break;
  }
  return "f32";
}

class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual int32_t capacity() const = 0;  // positions it can hold
  virtual KvElement element() const = 0;
  // Makes positions [pos0, pos0 + n) writable (allocating or un-sharing their memory). Called
  // before a forward pass, outside its parallel region: this is where running out of memory is
  // reported.
  virtual void prepare(int32_t pos0, int32_t n) = 0;
  // Row of n_head_kv · head_dim elements for (layer, pos), to write a position's key / value.
  virtual uint8_t* k_row(int32_t layer, int32_t pos) = 0;
  virtual uint8_t* v_row(int32_t layer, int32_t pos) = 0;
  // The rows of positions first, first + 1, … of one layer, for attention (offset 0: head 0).
  virtual ref::KvRows k_rows(int32_t layer, int32_t first) const = 0;
  virtual ref::KvRows v_rows(int32_t layer, int32_t first) const = 0;
  virtual size_t bytes() const = 0;  // memory held
  // The first position whose rows `layer` still holds: a sliding-window layer may release the
  // rows no later query reads (PagedKvCache); 0 where every row is kept.
  virtual int32_t first_cached(int32_t /*layer*/) const { return 0; }
};

// One block of memory for capacity × layers × (K and V) rows, allocated up front.
class ContiguousKvCache final : public KvCache {
 public:
  ContiguousKvCache(int32_t n_layer, int32_t capacity, int32_t row_elems, KvElement element);
  // Moving keeps data_'s heap block, so bases_ stay valid; a copy would point into the original.
  ContiguousKvCache(ContiguousKvCache&&) noexcept = default;
  ContiguousKvCache(const ContiguousKvCache&) = delete;
  ContiguousKvCache& operator=(const ContiguousKvCache&) = delete;

  int32_t capacity() const override { return capacity_; }
  KvElement element() const override { return element_; }
  void prepare(int32_t, int32_t) override {}
  uint8_t* k_row(int32_t layer, int32_t pos) override { return row(layer, pos, 0); }
  uint8_t* v_row(int32_t layer, int32_t pos) override { return row(layer, pos, 1); }
  ref::KvRows k_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 0); }
  ref::KvRows v_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 1); }
  size_t bytes() const override { return data_.size(); }

 private:
  uint8_t* row(int32_t layer, int32_t pos, int kv) {
    return bases_[size_t(layer) * 2 + size_t(kv)] + size_t(pos) * row_bytes_;
  }
  ref::KvRows rows(int32_t layer, int32_t first, int kv) const {
    return {&bases_[size_t(layer) * 2 + size_t(kv)], size_t(capacity_), row_bytes_, 0,
            size_t(first)};
  }

  int32_t capacity_;
  KvElement element_;
  size_t row_bytes_;
  std::vector<uint8_t> data_;
  std::vector<uint8_t*> bases_;  // per (layer, K/V): its rows, as the single page of KvRows
};

}  // namespace slm
