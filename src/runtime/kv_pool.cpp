#include "src/runtime/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>

#include "slm/error.h"

namespace slm {

KvBlockPool::KvBlockPool(int32_t n_layer, int32_t row_elems, KvElement element,
                         int32_t block_tokens, size_t budget_bytes)
    : block_tokens_(block_tokens),
      element_(element),
      row_bytes_(kv_row_bytes(element, size_t(row_elems))),
      block_bytes_(size_t(n_layer) * 2 * size_t(std::max(block_tokens, 0)) * row_bytes_) {
  if (block_tokens <= 0 || block_bytes_ == 0) {
    throw InvalidArgumentError(fmt::format("KV block size {} must be positive", block_tokens));
  }
  if (element == KvElement::kQ8_0 && row_elems % 32 != 0) {
    throw InvalidArgumentError(
        fmt::format("a q8_0 KV row of {} elements is not whole blocks of 32", row_elems));
  }
  max_blocks_ = budget_bytes / block_bytes_;
}

int32_t KvBlockPool::allocate() {
  std::lock_guard lock(mutex_);
  if (!free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    refs_[size_t(b)] = 1;
    return b;
  }
  if (blocks_.size() >= max_blocks_) {
    throw OutOfMemoryError(fmt::format(
        "the KV cache is full: all {} blocks of {} positions ({} bytes each) are in use; give the "
        "session a larger KV budget or shorter sequences",
        max_blocks_, block_tokens_, block_bytes_));
  }
  blocks_.emplace_back(new uint8_t[block_bytes_]);
  refs_.push_back(1);
  return int32_t(blocks_.size() - 1);
}

void KvBlockPool::retain(int32_t block) {
  std::lock_guard lock(mutex_);
  ++refs_[size_t(block)];
}

void KvBlockPool::release(int32_t block) {
  std::lock_guard lock(mutex_);
  if (--refs_[size_t(block)] == 0) free_.push_back(block);
}

int32_t KvBlockPool::references(int32_t block) const {
  std::lock_guard lock(mutex_);
  return refs_[size_t(block)];
}

uint8_t* KvBlockPool::data(int32_t block) const {
  std::lock_guard lock(mutex_);  // another thread's allocate() may be growing blocks_
  return blocks_[size_t(block)].get();
}

size_t KvBlockPool::blocks_in_use() const {
  std::lock_guard lock(mutex_);
  return blocks_.size() - free_.size();
}

size_t KvBlockPool::bytes() const {
  std::lock_guard lock(mutex_);
  return blocks_.size() * block_bytes_;
}

}  // namespace slm
