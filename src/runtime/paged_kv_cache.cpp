#include "src/runtime/paged_kv_cache.h"

#include <cstring>

namespace slm {

PagedKvCache::PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity)
    : pool_(std::move(pool)), capacity_(capacity) {
  // The tables never reallocate while decoding (a new block costs no allocation of its own
  // once the pool has memory for it).
  const size_t most = (size_t(capacity) + size_t(pool_->block_tokens()) - 1) /
                      size_t(pool_->block_tokens());
  blocks_.reserve(most);
  pages_.reserve(most);
}

PagedKvCache::~PagedKvCache() { release_all(); }

PagedKvCache::PagedKvCache(PagedKvCache&& other) noexcept
    : pool_(other.pool_),
      capacity_(other.capacity_),
      blocks_(std::move(other.blocks_)),
      pages_(std::move(other.pages_)) {
  other.blocks_.clear();
  other.pages_.clear();
}

PagedKvCache& PagedKvCache::operator=(PagedKvCache&& other) noexcept {
  if (this != &other) {
    release_all();
    pool_ = other.pool_;
    capacity_ = other.capacity_;
    blocks_ = std::move(other.blocks_);
    pages_ = std::move(other.pages_);
    other.blocks_.clear();
    other.pages_.clear();
  }
  return *this;
}

void PagedKvCache::release_all() {
  for (const int32_t b : blocks_) pool_->release(b);
  blocks_.clear();
  pages_.clear();
}

PagedKvCache PagedKvCache::fork() const {
  PagedKvCache copy(pool_, capacity_);
  for (const int32_t b : blocks_) pool_->retain(b);
  copy.blocks_ = blocks_;
  copy.pages_ = pages_;
  return copy;
}

void PagedKvCache::truncate(int32_t n) {
  const size_t keep = (size_t(n) + size_t(pool_->block_tokens()) - 1) / size_t(pool_->block_tokens());
  while (blocks_.size() > keep) {
    pool_->release(blocks_.back());
    blocks_.pop_back();
    pages_.pop_back();
  }
}

void PagedKvCache::prepare(int32_t pos0, int32_t n) {
  const size_t B = size_t(pool_->block_tokens());
  const size_t first = size_t(pos0) / B, end = (size_t(pos0) + size_t(n) + B - 1) / B;
  // Blocks this pass writes into that other sequences share get a private copy first.
  for (size_t b = first; b < std::min(end, blocks_.size()); ++b) {
    if (pool_->references(blocks_[b]) == 1) continue;
    const int32_t copy = pool_->allocate();
    std::memcpy(pool_->data(copy), pages_[b], pool_->block_bytes());
    pool_->release(blocks_[b]);
    blocks_[b] = copy;
    pages_[b] = pool_->data(copy);
  }
  const size_t had = blocks_.size();
  try {
    while (blocks_.size() < end) {
      blocks_.push_back(pool_->allocate());
      pages_.push_back(pool_->data(blocks_.back()));
    }
  } catch (...) {
    truncate(int32_t(had * B));  // a pass that cannot run holds no blocks for it
    throw;
  }
}

}  // namespace slm
