// One sequence's KV cache as a table of blocks from a shared KvBlockPool. Positions [0, length)
// are cached; block i holds positions [i·B, (i+1)·B). A fork shares every block with its parent;
// the first write to a shared block copies it (copy on write). Truncating frees the blocks past
// the new length. Full blocks can be published to the pool and taken by other sequences with the
// same tokens (prefix sharing); with an evicting pool, the table may be taken away between uses.
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
  ~PagedKvCache() override;
  PagedKvCache(PagedKvCache&& other) noexcept;
  PagedKvCache& operator=(PagedKvCache&& other) noexcept;
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  // A second sequence with the same cached positions, sharing their blocks.
  PagedKvCache fork() const;
  // An empty sequence on the same pool.
  PagedKvCache empty_like() const { return PagedKvCache(pool_, capacity_); }
  // Keeps positions [0, n): blocks wholly past n go back to the pool.
  void truncate(int32_t n);

  int32_t capacity() const override { return capacity_; }
  KvElement element() const override { return pool_->element(); }
  void prepare(int32_t pos0, int32_t n) override;
  uint8_t* k_row(int32_t layer, int32_t pos) override { return row(layer, pos, 0); }
  uint8_t* v_row(int32_t layer, int32_t pos) override { return row(layer, pos, 1); }
  ref::KvRows k_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 0); }
  ref::KvRows v_rows(int32_t layer, int32_t first) const override { return rows(layer, first, 1); }
  size_t bytes() const override {
    return id_ < 0 || pool_->evicted(id_) ? 0 : blocks_.size() * pool_->block_bytes();
  }

  const std::vector<int32_t>& blocks() const { return blocks_; }
  const KvBlockPool& pool() const { return *pool_; }

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
    explicit Use(PagedKvCache& cache);
    ~Use() { cache_.pool_->end_use(cache_.id_); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    bool evicted() const { return evicted_; }

   private:
    PagedKvCache& cache_;
    bool evicted_;
  };
  void set_pinned(bool pinned) { pool_->set_pinned(id_, pinned); }

 private:
  uint8_t* row(int32_t layer, int32_t pos, int kv) {
    const size_t b = size_t(pos) / size_t(pool_->block_tokens());
    const size_t at = size_t(pos) % size_t(pool_->block_tokens());
    return pages_[b] + pool_->offset(layer, kv) + at * pool_->row_bytes();
  }
  ref::KvRows rows(int32_t layer, int32_t first, int kv) const {
    return {pages_.data(), size_t(pool_->block_tokens()), pool_->row_bytes(),
            pool_->offset(layer, kv), size_t(first)};
  }
  void leave_pool();  // gives the blocks back (unless evicted) and unregisters

  std::shared_ptr<KvBlockPool> pool_;
  int32_t capacity_;
  int32_t id_ = -1;              // in the pool's registry of sequences (-1: moved from)
  std::vector<int32_t> blocks_;  // the block of each B positions
  std::vector<uint8_t*> pages_;  // their memory (KvRows' page table)
  std::vector<uint64_t> hashes_;  // chain hashes of the first blocks, all full and published
};

}  // namespace slm
