#include "src/runtime/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>

#include "slm/error.h"

namespace slm {
namespace {

// FNV-1a over the tokens' bytes, continuing from the parent's hash, then a splitmix64 finish so
// that chained hashes spread over all 64 bits.
uint64_t default_token_hash(uint64_t parent_hash, std::span<const int32_t> tokens) {
  uint64_t h = parent_hash ^ 0xcbf29ce484222325ull;
  for (const int32_t t : tokens) {
    for (int i = 0; i < 4; ++i) h = (h ^ ((uint32_t(t) >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  }
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace

KvBlockPool::KvBlockPool(int32_t n_layer, int32_t row_elems, KvElement element,
                         int32_t block_tokens, size_t budget_bytes)
    : block_tokens_(block_tokens),
      element_(element),
      row_bytes_(size_t(row_elems) * kv_element_bytes(element)),
      block_bytes_(size_t(n_layer) * 2 * size_t(std::max(block_tokens, 0)) * row_bytes_),
      token_hash_(default_token_hash) {
  if (block_tokens <= 0 || block_bytes_ == 0) {
    throw InvalidArgumentError(fmt::format("KV block size {} must be positive", block_tokens));
  }
  max_blocks_ = budget_bytes / block_bytes_;
}

// In order: a free block, new memory under the budget, the oldest cached (published but
// unreferenced) block, the blocks of an evicted sequence.
int32_t KvBlockPool::allocate() {
  std::lock_guard lock(mutex_);
  for (;;) {
    if (!free_.empty()) {
      const int32_t b = free_.back();
      free_.pop_back();
      info_[size_t(b)].refs = 1;
      return b;
    }
    if (blocks_.size() < max_blocks_) {
      blocks_.emplace_back(new uint8_t[block_bytes_]);
      info_.push_back({.refs = 1});
      tokens_.resize(tokens_.size() + size_t(block_tokens_));
      return int32_t(blocks_.size() - 1);
    }
    const int32_t cached = take_cached_locked();
    if (cached >= 0) {
      info_[size_t(cached)].refs = 1;
      return cached;
    }
    if (!evict_ || !evict_one_locked()) break;
  }
  throw OutOfMemoryError(fmt::format(
      "the KV cache is full: all {} blocks of {} positions ({} bytes each) are in use{}; give the "
      "session a larger KV budget or shorter sequences",
      max_blocks_, block_tokens_, block_bytes_,
      evict_ ? " and no idle unpinned session is left to evict" : ""));
}

void KvBlockPool::retain(int32_t block) {
  std::lock_guard lock(mutex_);
  ++info_[size_t(block)].refs;
}

void KvBlockPool::release(int32_t block) {
  std::lock_guard lock(mutex_);
  release_locked(block);
}

void KvBlockPool::release_locked(int32_t block) {
  Block& b = info_[size_t(block)];
  if (--b.refs > 0) return;
  if (b.published) {  // kept for a later lookup until its memory is needed
    b.cached_since = ++tick_;
    ++cached_;
  } else {
    free_.push_back(block);
  }
}

int32_t KvBlockPool::references(int32_t block) const {
  std::lock_guard lock(mutex_);
  return info_[size_t(block)].refs;
}

uint8_t* KvBlockPool::data(int32_t block) const {
  std::lock_guard lock(mutex_);  // another thread's allocate() may be growing blocks_
  return blocks_[size_t(block)].get();
}

size_t KvBlockPool::blocks_in_use() const {
  std::lock_guard lock(mutex_);
  return blocks_.size() - free_.size() - cached_;
}

size_t KvBlockPool::bytes() const {
  std::lock_guard lock(mutex_);
  return blocks_.size() * block_bytes_;
}

}  // namespace slm
