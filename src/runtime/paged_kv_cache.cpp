#include "src/runtime/paged_kv_cache.h"

#include <algorithm>
#include <cstring>

namespace slm {

PagedKvCache::PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity)
    : PagedKvCache(pool, capacity, pool->n_layer(), 0, 0) {
  join_pool();
}

PagedKvCache::PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity, int32_t layers,
                           int32_t window, int32_t keep_extra)
    : pool_(std::move(pool)),
      capacity_(capacity),
      layers_(layers),
      window_(window),
      keep_extra_(keep_extra) {
  // The tables never reallocate while decoding (a new block costs no allocation of its own
  // once the pool has memory for it).
  const size_t most =
      (size_t(capacity) + size_t(pool_->block_tokens()) - 1) / size_t(pool_->block_tokens());
  blocks_.reserve(most);
  pages_.reserve(most);
}

PagedKvCache::PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity,
                           std::span<const int32_t> layer_windows, int32_t keep_extra)
    : PagedKvCache(pool, capacity, pool->n_layer(), 0, 0) {
  int32_t window = 0, windowed = 0;
  const auto slides = [&](int32_t w) { return w > 0 && w < capacity; };
  for (const int32_t w : layer_windows) {
    if (slides(w)) window = std::max(window, w), ++windowed;
  }
  if (windowed > 0) {
    // The window table drops what none of its layers can see: the widest window decides.
    layers_ = pool_->n_layer() - windowed;
    windowed_.reset(new PagedKvCache(pool_, capacity, windowed, window, std::max(keep_extra, 0)));
    int32_t next[2] = {0, 0};
    for (const int32_t w : layer_windows) {
      table_of_.push_back(slides(w) ? 1 : 0);
      index_in_table_.push_back(next[table_of_.back()]++);
    }
  }
  join_pool();
}

PagedKvCache::~PagedKvCache() { leave_pool(); }

// The window table lives behind a pointer, so its address (registered with the pool) survives
// moves; only the full table's address changes.
void PagedKvCache::join_pool() {
  hashes_.reserve(blocks_.capacity());
  id_ = pool_->add_sequence(&blocks_, windowed_ ? &windowed_->blocks_ : nullptr);
}

PagedKvCache::PagedKvCache(PagedKvCache&& other) noexcept : capacity_(0), layers_(0) {
  take(other);
}

PagedKvCache& PagedKvCache::operator=(PagedKvCache&& other) noexcept {
  if (this != &other) {
    leave_pool();
    take(other);
  }
  return *this;
}

// The pool may read a table (to evict it) whenever its sequence is idle: a move holds it first.
void PagedKvCache::take(PagedKvCache& other) noexcept {
  pool_ = other.pool_;
  capacity_ = other.capacity_;
  layers_ = other.layers_;
  window_ = other.window_;
  keep_extra_ = other.keep_extra_;
  id_ = other.id_;
  if (id_ >= 0) pool_->hold(id_);
  released_ = other.released_;
  blocks_ = std::move(other.blocks_);
  pages_ = std::move(other.pages_);
  hashes_ = std::move(other.hashes_);
  windowed_ = std::move(other.windowed_);
  table_of_ = std::move(other.table_of_);
  index_in_table_ = std::move(other.index_in_table_);
  other.clear_table();
  other.id_ = -1;
  if (id_ >= 0) pool_->move_sequence(id_, &blocks_);
}

void PagedKvCache::clear_table() {
  blocks_.clear();
  pages_.clear();
  hashes_.clear();
  released_ = 0;
}

void PagedKvCache::release_all() {
  for (const int32_t b : blocks_) {
    if (b >= 0) pool_->release(b);
  }
  clear_table();
}

// Only a registered sequence (not a window table, whose owner gives its blocks back, nor a
// moved-from one) leaves the pool.
void PagedKvCache::leave_pool() {
  if (id_ < 0) return;
  const bool evicted = pool_->remove_sequence(id_);  // the pool no longer reads the tables
  for (PagedKvCache* t : {this, windowed_.get()}) {
    if (t == nullptr) continue;
    if (evicted) {
      t->clear_table();
    } else {
      t->release_all();
    }
  }
  id_ = -1;
}

PagedKvCache PagedKvCache::empty_like() const {
  PagedKvCache copy(pool_, capacity_, layers_, window_, keep_extra_);
  if (windowed_) {
    copy.windowed_.reset(new PagedKvCache(windowed_->empty_like()));
    copy.table_of_ = table_of_;
    copy.index_in_table_ = index_in_table_;
  }
  if (window_ == 0) copy.join_pool();  // a window table is covered by its owner's entry
  return copy;
}

PagedKvCache PagedKvCache::fork() const {
  PagedKvCache copy = empty_like();
  using Pair = std::pair<const PagedKvCache*, PagedKvCache*>;
  for (const auto& [from, to] : {Pair{this, &copy}, Pair{windowed_.get(), copy.windowed_.get()}}) {
    if (!from) continue;
    for (const int32_t b : from->blocks_) {
      if (b >= 0) pool_->retain(b);
    }
    to->blocks_ = from->blocks_;
    to->pages_ = from->pages_;
    to->hashes_ = from->hashes_;
    to->released_ = from->released_;
  }
  return copy;
}

bool PagedKvCache::can_truncate(int32_t n) const {
  const PagedKvCache* t = windowed_ ? windowed_.get() : this;
  // A query at n reads (n − window, n); the table holds positions from released · B on.
  return t->window_ == 0 || n == 0 ||
         int64_t(n) + 1 - t->window_ >= int64_t(t->released_) * t->pool_->block_tokens();
}

void PagedKvCache::truncate(int32_t n) {
  truncate_table(n);
  if (windowed_) windowed_->truncate_table(n);
}

void PagedKvCache::truncate_table(int32_t n) {
  const size_t B = size_t(pool_->block_tokens());
  const size_t keep = (size_t(n) + B - 1) / B;
  while (blocks_.size() > keep) {
    if (blocks_.back() >= 0) pool_->release(blocks_.back());
    blocks_.pop_back();
    pages_.pop_back();
  }
  released_ = std::min(released_, int32_t(blocks_.size()));
  if (hashes_.size() > size_t(n) / B) hashes_.resize(size_t(n) / B);
}

int32_t PagedKvCache::first_cached(int32_t layer) const {
  const PagedKvCache* t = table(layer).first;
  return t->released_ * pool_->block_tokens();
}

void PagedKvCache::prepare(int32_t pos0, int32_t n) {
  const size_t had = blocks_.size();
  prepare_table(pos0, n);
  if (!windowed_) return;
  try {
    windowed_->prepare_table(pos0, n);
  } catch (...) {
    truncate_table(int32_t(had * size_t(pool_->block_tokens())));
    throw;
  }
}

void PagedKvCache::prepare_table(int32_t pos0, int32_t n) {
  if (layers_ == 0) return;  // every layer lives in the window table
  const size_t B = size_t(pool_->block_tokens());
  const size_t first = size_t(pos0) / B, end = (size_t(pos0) + size_t(n) + B - 1) / B;
  // A window table lets go of the blocks wholly before the last window + keep_extra positions
  // of this pass, but never of one this pass's first query (and so every later one) reads.
  size_t drop = 0;
  if (window_ > 0) {
    const int64_t keep_from =
        std::min(int64_t(pos0) + 1 - window_, int64_t(pos0) + n + 1 - window_ - keep_extra_);
    drop = size_t(std::max<int64_t>(0, keep_from)) / B;
    for (size_t b = size_t(released_); b < std::min(drop, blocks_.size()); ++b) {
      if (blocks_[b] >= 0) pool_->release(blocks_[b]);
      blocks_[b] = -1;
      pages_[b] = nullptr;
    }
    released_ = int32_t(std::max(size_t(released_), std::min(drop, blocks_.size())));
  }
  // Blocks this pass writes into that other sequences share get a private copy first; a
  // published block of ours leaves the index (its rows are about to change).
  for (size_t b = first; b < std::min(end, blocks_.size()); ++b) {
    if (blocks_[b] < 0 || pool_->make_writable(blocks_[b])) continue;
    const int32_t copy = pool_->allocate(layers_);
    std::memcpy(pool_->data(copy), pages_[b], pool_->block_bytes(layers_));
    pool_->release(blocks_[b]);
    blocks_[b] = copy;
    pages_[b] = pool_->data(copy);
  }
  const size_t had = blocks_.size();
  try {
    while (blocks_.size() < end) {
      if (blocks_.size() < drop) {  // never to be read (loading a state position by position)
        blocks_.push_back(-1);
        pages_.push_back(nullptr);
        ++released_;
        continue;
      }
      blocks_.push_back(pool_->allocate(layers_));
      pages_.push_back(pool_->data(blocks_.back()));
    }
  } catch (...) {
    truncate_table(int32_t(had * B));  // a pass that cannot run holds no blocks for it
    throw;
  }
}

void PagedKvCache::publish_full_blocks(std::span<const int32_t> tokens) {
  if (windowed_) return;  // the blocks lack the window layers' rows
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
  if (windowed_ || size_t(length) != blocks_.size() * B || hashes_.size() != blocks_.size()) {
    return length;
  }
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

bool PagedKvCache::begin_use() {
  const bool evicted = pool_->begin_use(id_);
  if (evicted) {  // the pool released the blocks already
    clear_table();
    if (windowed_) windowed_->clear_table();
  }
  return evicted;
}

}  // namespace slm
