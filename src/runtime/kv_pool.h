// A pool of KV-cache blocks shared by the sequences of one model. A block holds the keys and
// values of `block_tokens` consecutive positions for every layer; sequences own blocks through
// reference counts (a fork shares them). Memory is taken from the system only when a block is
// first used and is kept for reuse, so it grows with what is cached, up to a byte budget.
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
  // Offset of (layer, K = 0 / V = 1)'s rows inside a block.
  size_t offset(int32_t layer, int kv) const {
    return (size_t(layer) * 2 + size_t(kv)) * size_t(block_tokens_) * row_bytes_;
  }

  // A block with one reference. Throws OutOfMemoryError when the budget is used up.
  int32_t allocate();
  void retain(int32_t block);
  void release(int32_t block);  // back to the free list at zero references
  int32_t references(int32_t block) const;
  uint8_t* data(int32_t block) const;  // stays put while the block lives

  size_t max_blocks() const { return max_blocks_; }
  size_t blocks_in_use() const;
  size_t bytes() const;  // memory taken from the system

 private:
  int32_t block_tokens_;
  KvElement element_;
  size_t row_bytes_, block_bytes_, max_blocks_ = 0;
  mutable std::mutex mutex_;  // sequences of different threads share the pool
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
};

}  // namespace slm
