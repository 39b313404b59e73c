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
  hashes_.reserve(most);
  id_ = pool_->add_sequence(&blocks_);
}

PagedKvCache::~PagedKvCache() { leave_pool(); }

// The pool may read a table (to evict it) whenever its sequence is idle: a move holds it first.
PagedKvCache::PagedKvCache(PagedKvCache&& other) noexcept
    : pool_(other.pool_), capacity_(other.capacity_), id_(other.id_) {
  if (id_ >= 0) pool_->hold(id_);
  blocks_ = std::move(other.blocks_);
  pages_ = std::move(other.pages_);
  hashes_ = std::move(other.hashes_);
  other.blocks_.clear();
  other.pages_.clear();
  other.hashes_.clear();
  other.id_ = -1;
  if (id_ >= 0) pool_->move_sequence(id_, &blocks_);
}

PagedKvCache& PagedKvCache::operator=(PagedKvCache&& other) noexcept {
  if (this != &other) {
    leave_pool();
    pool_ = other.pool_;
    capacity_ = other.capacity_;
    id_ = other.id_;
    if (id_ >= 0) pool_->hold(id_);
    blocks_ = std::move(other.blocks_);
    pages_ = std::move(other.pages_);
    hashes_ = std::move(other.hashes_);
    other.blocks_.clear();
    other.pages_.clear();
    other.hashes_.clear();
    other.id_ = -1;
    if (id_ >= 0) pool_->move_sequence(id_, &blocks_);
  }
  return *this;
}

void PagedKvCache::leave_pool() {
  if (id_ < 0) return;
  const bool evicted = pool_->remove_sequence(id_);  // the pool no longer reads the table
  if (!evicted) {
    for (const int32_t b : blocks_) pool_->release(b);
  }
  blocks_.clear();
  pages_.clear();
  hashes_.clear();
  id_ = -1;
}

PagedKvCache PagedKvCache::fork() const {
  PagedKvCache copy(pool_, capacity_);
  for (const int32_t b : blocks_) pool_->retain(b);
  copy.blocks_ = blocks_;
  copy.pages_ = pages_;
  copy.hashes_ = hashes_;
  return copy;
}

void PagedKvCache::truncate(int32_t n) {
  const size_t B = size_t(pool_->block_tokens());
  const size_t keep = (size_t(n) + B - 1) / B;
  while (blocks_.size() > keep) {
    pool_->release(blocks_.back());
    blocks_.pop_back();
    pages_.pop_back();
  }
  if (hashes_.size() > size_t(n) / B) hashes_.resize(size_t(n) / B);
}

void PagedKvCache::prepare(int32_t pos0, int32_t n) {
  const size_t B = size_t(pool_->block_tokens());
  const size_t first = size_t(pos0) / B, end = (size_t(pos0) + size_t(n) + B - 1) / B;
  // Blocks this pass writes into that other sequences share get a private copy first; a
  // published block of ours leaves the index (its rows are about to change).
  for (size_t b = first; b < std::min(end, blocks_.size()); ++b) {
    if (pool_->make_writable(blocks_[b])) continue;
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

void PagedKvCache::publish_full_blocks(std::span<const int32_t> tokens) {
  const size_t B = size_t(pool_->block_tokens());
  const size_t full = std::min(tokens.size() / B, blocks_.size());
  for (size_t i = hashes_.size(); i < full; ++i) {
    const std::span<const int32_t> own = tokens.subspan(i * B, B);
    const uint64_t hash =
        pool_->chain_hash(i == 0 ? pool_->first_parent_hash() : hashes_[i - 1], own);
    pool_->publish(blocks_[i], hash, i == 0 ? -1 : blocks_[i - 1], own);
    hashes_.push_back(hash);
  }
}

int32_t PagedKvCache::adopt_published(std::span<const int32_t> tokens, int32_t length,
                                      int32_t limit) {
  const size_t B = size_t(pool_->block_tokens());
  if (size_t(length) != blocks_.size() * B || hashes_.size() != blocks_.size()) return length;
  while ((blocks_.size() + 1) * B <= std::min(size_t(limit), tokens.size())) {
    const size_t i = blocks_.size();
    const std::span<const int32_t> own = tokens.subspan(i * B, B);
    const uint64_t hash =
        pool_->chain_hash(i == 0 ? pool_->first_parent_hash() : hashes_[i - 1], own);
    const int32_t block = pool_->lookup(hash, i == 0 ? -1 : blocks_[i - 1], own);
    if (block < 0) break;
    blocks_.push_back(block);
    pages_.push_back(pool_->data(block));
    hashes_.push_back(hash);
  }
  return int32_t(blocks_.size() * B);
}

PagedKvCache::Use::Use(PagedKvCache& cache)
    : cache_(cache), evicted_(cache.pool_->begin_use(cache.id_)) {
  if (evicted_) {  // the pool released the blocks already
    cache_.blocks_.clear();
    cache_.pages_.clear();
    cache_.hashes_.clear();
  }
}

}  // namespace slm
