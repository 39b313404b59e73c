// One sequence's KV cache as a table of blocks from a shared KvBlockPool. Positions [0, length)
// are cached; block i holds positions [i·B, (i+1)·B). A fork shares every block with its parent;
// the first write to a shared block copies it (copy on write). Truncating frees the blocks past
// the new length. Full blocks can be published to the pool and taken by other sequences with the
// same tokens (prefix sharing); with an evicting pool, the table may be taken away between uses.
//
// Sliding-window layers (a query at p sees only (p − window, p]) can keep their rows apart, in a
// second table of blocks that hold only those layers: a pass at positions [p0, p0 + n) releases
// the blocks wholly before its last window + keep_extra positions (and never one that its first
// query, at p0, reads), so with passes of n ≤ keep_extra tokens those layers hold at most
// window + keep_extra positions (rounded out to blocks) however long the sequence grows, and the
// sequence can be rewound by up to about keep_extra tokens. Their table then has holes at the
// front (block −1, page null); rewinding into them is refused (can_truncate). A sequence with
// such a table publishes and adopts nothing (its blocks lack the window layers' rows).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "src/runtime/kv_cache.h"
#include "src/runtime/kv_pool.h"

namespace slm {

class PagedKvCache final : public KvCache {
 public:
  // `capacity`: the most positions this sequence may hold (its context length).
  PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity);
  // Layers whose window (one per layer of the pool's model; 0: full attention) is set and
  // shorter than the capacity keep only their window + keep_extra positions, in a table of
  // their own.
  PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity,
               std::span<const int32_t> layer_windows, int32_t keep_extra = 0);
  ~PagedKvCache() override;
  PagedKvCache(PagedKvCache&& other) noexcept;
  PagedKvCache& operator=(PagedKvCache&& other) noexcept;
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  // A second sequence with the same cached positions, sharing their blocks.
  PagedKvCache fork() const;
  // An empty sequence on the same pool (with the same layer tables).
  PagedKvCache empty_like() const;
  // Keeps positions [0, n): blocks wholly past n go back to the pool. Requires can_truncate(n).
  void truncate(int32_t n);
  // Whether a sequence cut to n positions could go on: false when a query at position n would
  // read sliding-window rows that were already released.
  bool can_truncate(int32_t n) const;

  int32_t capacity() const override { return capacity_; }
  KvElement element() const override { return pool_->element(); }
  void prepare(int32_t pos0, int32_t n) override;
  uint8_t* k_row(int32_t layer, int32_t pos) override { return row(layer, pos, 0); }
  uint8_t* v_row(int32_t layer, int32_t pos) override { return row(layer, pos, 1); }
  ref::KvRows k_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 0); }
  ref::KvRows v_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 1); }
  size_t bytes() const override {
    return id_ < 0 || pool_->evicted(id_) ? 0 : own_bytes() + window_bytes();
  }
  int32_t first_cached(int32_t layer) const override;

  // The table of the full-attention layers (every layer when none keeps a window apart).
  const std::vector<int32_t>& blocks() const { return blocks_; }
  const KvBlockPool& pool() const { return *pool_; }
  // Memory of the sliding-window layers' table (0 without one), and how many layers it holds.
  size_t window_bytes() const { return windowed_ ? windowed_->own_bytes() : 0; }
  int32_t window_layers() const { return windowed_ ? windowed_->layers_ : 0; }

  // --- Prefix sharing ---
  // Publishes the blocks that `tokens` (the whole sequence, one per cached position) fills
  // completely and that are not published yet.
  void publish_full_blocks(std::span<const int32_t> tokens);
  // When the sequence is `length` = a whole number of published blocks long: appends the
  // published blocks that hold the next positions of `tokens` (the whole intended sequence),
  // never reaching past position `limit`. Returns the new length.
  int32_t adopt_published(std::span<const int32_t> tokens, int32_t length, int32_t limit);

  // --- Eviction ---
  // While a Use lives the pool does not evict this sequence (its owner reads the blocks).
  // evicted(): the pool took the blocks since the last Use; the table is now empty.
  class Use {
   public:
    explicit Use(PagedKvCache& cache) : cache_(cache), evicted_(cache.begin_use()) {}
    ~Use() { cache_.end_use(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    bool evicted() const { return evicted_; }

   private:
    PagedKvCache& cache_;
    bool evicted_;
  };
  void set_pinned(bool pinned) { pool_->set_pinned(id_, pinned); }
  // What a Use does, for a caller holding several sequences at once (Batch): begin_use() returns
  // whether the pool took the blocks since the last use (the tables are then empty); every
  // begin_use() needs its end_use().
  bool begin_use();
  void end_use() { pool_->end_use(id_); }

 private:
  // A table of `layers` layers that keeps window + keep_extra positions (window 0: all).
  PagedKvCache(std::shared_ptr<KvBlockPool> pool, int32_t capacity, int32_t layers, int32_t window,
               int32_t keep_extra);
  // The table holding `layer`, and the layer's index in its blocks.
  std::pair<const PagedKvCache*, size_t> table(int32_t layer) const {
    if (table_of_.empty()) return {this, size_t(layer)};
    const PagedKvCache* t = table_of_[size_t(layer)] ? windowed_.get() : this;
    return {t, size_t(index_in_table_[size_t(layer)])};
  }
  uint8_t* row(int32_t layer, int32_t pos, int kv) {
    const auto [t, index] = table(layer);
    const size_t B = size_t(pool_->block_tokens());
    return t->pages_[size_t(pos) / B] + pool_->offset(int32_t(index), kv) +
           size_t(pos) % B * pool_->row_bytes();
  }
  ref::KvRows rows(int32_t layer, int32_t first, int kv) const {
    const auto [t, index] = table(layer);
    return {t->pages_.data(), size_t(pool_->block_tokens()), pool_->row_bytes(),
            pool_->offset(int32_t(index), kv), size_t(first)};
  }
  size_t own_bytes() const {
    return (blocks_.size() - size_t(released_)) * pool_->block_bytes(layers_);
  }
  void prepare_table(int32_t pos0, int32_t n);
  void truncate_table(int32_t n);
  void release_all();
  void clear_table();
  void take(PagedKvCache& other) noexcept;  // other's table and pool registration; other empty
  void join_pool();   // registers this sequence (and its window table) for eviction
  void leave_pool();  // gives the blocks back (unless evicted) and unregisters

  std::shared_ptr<KvBlockPool> pool_;
  int32_t capacity_;
  int32_t layers_;                // in each of this table's blocks
  int32_t window_ = 0;            // > 0: release blocks no later query can see
  int32_t keep_extra_ = 0;        // positions kept beyond the window (to rewind by)
  int32_t released_ = 0;          // leading blocks already released (window_ > 0)
  int32_t id_ = -1;               // in the pool's registry (-1: moved from, or a window table)
  std::vector<int32_t> blocks_;   // the block of each B positions (−1: released)
  std::vector<uint8_t*> pages_;   // their memory (KvRows' page table)
  std::vector<uint64_t> hashes_;  // chain hashes of the first blocks, all full and published
  // With a window table: per layer, whether it lives there, and its index in its table's blocks.
  // The window table is not registered with the pool itself: its owner's entry covers it.
  std::unique_ptr<PagedKvCache> windowed_;
  std::vector<uint8_t> table_of_;
  std::vector<int32_t> index_in_table_;
};

}  // namespace slm
