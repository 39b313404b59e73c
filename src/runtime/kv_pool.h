// A pool of KV-cache blocks shared by the sequences of one model. A block holds the keys and
// values of `block_tokens` consecutive positions for every layer (or, for a sequence that keeps
// its sliding-window layers apart, for a group of layers: see allocate(n_layer)); sequences own
// blocks through reference counts (a fork shares them). Memory is taken from the system only
// when a block is first used and is kept for reuse, so it grows with what is cached, up to a
// byte budget that blocks of every size share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "src/runtime/kv_cache.h"

namespace slm {

class KvBlockPool {
 public:
  // `row_elems` = n_head_kv · head_dim; budget_bytes: the most block memory it may hold.
  KvBlockPool(int32_t n_layer, int32_t row_elems, KvElement element, int32_t block_tokens,
              size_t budget_bytes);

  int32_t block_tokens() const { return block_tokens_; }
  KvElement element() const { return element_; }
  size_t row_bytes() const { return row_bytes_; }
  size_t block_bytes() const { return block_bytes_; }
  int32_t n_layer() const { return n_layer_; }
  // A block of `n_layer` layers (a layer group): n_layer · 2 · block_tokens rows.
  size_t block_bytes(int32_t n_layer) const {
    return size_t(n_layer) * 2 * size_t(block_tokens_) * row_bytes_;
  }
  // Offset of (layer, K = 0 / V = 1)'s rows inside a block (layer: its index in the block).
  size_t offset(int32_t layer, int kv) const {
    return (size_t(layer) * 2 + size_t(kv)) * size_t(block_tokens_) * row_bytes_;
  }

  // A block of every layer with one reference. Throws OutOfMemoryError when the budget is used
  // up.
  int32_t allocate() { return allocate(n_layer_); }
  // A block of n_layer (≤ the model's) layers. Free blocks of another size give their memory
  // back to the system when the budget has no room left for this one.
  int32_t allocate(int32_t n_layer);
  void retain(int32_t block);
  void release(int32_t block);  // back to the free list at zero references
  int32_t references(int32_t block) const;
  uint8_t* data(int32_t block) const;  // stays put while the block lives

  size_t max_blocks() const { return max_blocks_; }  // of every layer
  size_t blocks_in_use() const;
  size_t bytes() const;  // memory taken from the system

 private:
  int32_t n_layer_, block_tokens_;
  KvElement element_;
  size_t row_bytes_, block_bytes_, max_blocks_ = 0, budget_bytes_, bytes_ = 0;
  mutable std::mutex mutex_;  // sequences of different threads share the pool
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> layers_;  // of each block (0: its memory was given back)
  std::vector<int32_t> free_;    // blocks with memory and no reference
  std::vector<int32_t> unused_;  // slots without memory
};

}  // namespace slm
