#include "src/runtime/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

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
    : n_layer_(n_layer),
      block_tokens_(block_tokens),
      element_(element),
      row_bytes_(kv_row_bytes(element, size_t(row_elems))),
      block_bytes_(size_t(n_layer) * 2 * size_t(std::max(block_tokens, 0)) * row_bytes_),
      budget_bytes_(budget_bytes),
      token_hash_(default_token_hash) {
  if (block_tokens <= 0 || block_bytes_ == 0) {
    throw InvalidArgumentError(fmt::format("KV block size {} must be positive", block_tokens));
  }
  if (element == KvElement::kQ8_0 && row_elems % 32 != 0) {
    throw InvalidArgumentError(
        fmt::format("a q8_0 KV row of {} elements is not whole blocks of 32", row_elems));
  }
  max_blocks_ = budget_bytes / block_bytes_;
}

// In order: a free block of this size; new memory under the budget (free blocks of another size
// giving theirs back); the oldest cached (published but unreferenced) block, which joins the
// free list; the blocks of an evicted sequence. The last two loop back to the first.
int32_t KvBlockPool::allocate(int32_t n_layer) {
  const size_t size = block_bytes(n_layer);
  std::lock_guard lock(mutex_);
  for (;;) {
    const auto same = std::find_if(free_.rbegin(), free_.rend(),
                                   [&](int32_t b) { return info_[size_t(b)].layers == n_layer; });
    if (same != free_.rend()) {
      const int32_t b = *same;
      free_.erase(std::next(same).base());
      info_[size_t(b)].refs = 1;
      return b;
    }
    // Every free block left has another size: give their memory back until this one fits.
    while (bytes_ + size > budget_bytes_ && !free_.empty()) {
      const int32_t b = free_.back();
      free_.pop_back();
      bytes_ -= block_bytes(info_[size_t(b)].layers);
      blocks_[size_t(b)].reset();
      info_[size_t(b)].layers = 0;
      unused_.push_back(b);
    }
    if (bytes_ + size <= budget_bytes_) break;
    if (uncache_oldest_locked()) continue;
    if (!evict_ || !evict_one_locked()) {
      throw OutOfMemoryError(fmt::format(
          "the KV cache is full: its {} bytes (blocks of {} positions, {} bytes for every layer) "
          "are in use{}; give the session a larger KV budget or shorter sequences",
          budget_bytes_, block_tokens_, block_bytes_,
          evict_ ? " and no idle unpinned session is left to evict" : ""));
    }
  }
  int32_t b;
  if (!unused_.empty()) {
    b = unused_.back();
    unused_.pop_back();
  } else {
    b = int32_t(blocks_.size());
    blocks_.emplace_back();
    info_.emplace_back();
    tokens_.resize(tokens_.size() + size_t(block_tokens_));
  }
  blocks_[size_t(b)].reset(new uint8_t[size]);
  Block& info = info_[size_t(b)];
  info.refs = 1;
  info.layers = n_layer;
  bytes_ += size;
  return b;
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
  return blocks_.size() - free_.size() - unused_.size() - cached_;
}

size_t KvBlockPool::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace slm
