#include "src/runtime/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "slm/error.h"

namespace slm {

KvBlockPool::KvBlockPool(int32_t n_layer, int32_t row_elems, KvElement element,
                         int32_t block_tokens, size_t budget_bytes)
    : n_layer_(n_layer),
      block_tokens_(block_tokens),
      element_(element),
      row_bytes_(kv_row_bytes(element, size_t(row_elems))),
      block_bytes_(size_t(n_layer) * 2 * size_t(std::max(block_tokens, 0)) * row_bytes_),
      budget_bytes_(budget_bytes) {
  if (block_tokens <= 0 || block_bytes_ == 0) {
    throw InvalidArgumentError(fmt::format("KV block size {} must be positive", block_tokens));
  }
  if (element == KvElement::kQ8_0 && row_elems % 32 != 0) {
    throw InvalidArgumentError(
        fmt::format("a q8_0 KV row of {} elements is not whole blocks of 32", row_elems));
  }
  max_blocks_ = budget_bytes / block_bytes_;
}

int32_t KvBlockPool::allocate(int32_t n_layer) {
  const size_t size = block_bytes(n_layer);
  std::lock_guard lock(mutex_);
  const auto same = std::find_if(free_.rbegin(), free_.rend(),
                                 [&](int32_t b) { return layers_[size_t(b)] == n_layer; });
  if (same != free_.rend()) {
    const int32_t b = *same;
    free_.erase(std::next(same).base());
    refs_[size_t(b)] = 1;
    return b;
  }
  // Every free block left has another size: give their memory back until this one fits.
  while (bytes_ + size > budget_bytes_ && !free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    bytes_ -= block_bytes(layers_[size_t(b)]);
    blocks_[size_t(b)].reset();
    layers_[size_t(b)] = 0;
    unused_.push_back(b);
  }
  if (bytes_ + size > budget_bytes_) {
    throw OutOfMemoryError(fmt::format(
        "the KV cache is full: its {} bytes (blocks of {} positions, {} bytes for every layer) "
        "are in use; give the session a larger KV budget or shorter sequences",
        budget_bytes_, block_tokens_, block_bytes_));
  }
  int32_t b;
  if (!unused_.empty()) {
    b = unused_.back();
    unused_.pop_back();
  } else {
    b = int32_t(blocks_.size());
    blocks_.emplace_back();
    refs_.push_back(0);
    layers_.push_back(0);
  }
  blocks_[size_t(b)].reset(new uint8_t[size]);
  refs_[size_t(b)] = 1;
  layers_[size_t(b)] = n_layer;
  bytes_ += size;
  return b;
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
  return blocks_.size() - free_.size() - unused_.size();
}

size_t KvBlockPool::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace slm
