// A pool of KV-cache blocks shared by the sequences of one model. A block holds the keys and
// values of `block_tokens` consecutive positions for every layer (or, for a sequence that keeps
// its sliding-window layers apart, for a group of layers: see allocate(n_layer)); sequences own
// blocks through reference counts (a fork shares them). Memory is taken from the system only
// when a block is first used and is kept for reuse, so it grows with what is cached, up to a
// byte budget that blocks of every size share.
//
// Prefix sharing: a full block can be published under the hash of every token from position 0
// to its end (chained through the previous block's hash, seeded with the model's fingerprint), so
// an unrelated sequence starting with the same tokens takes the block instead of computing it.
// A published block whose last reference goes stays cached until a lookup takes it back or an
// allocation needs its memory (the least recently released first). A lookup compares the stored
// tokens and the parent block, so a hash collision is a miss, never a wrong block. Only blocks of
// every layer are published: sessions of a model with any sliding-window layer publish and look
// up nothing (their window layers' rows are not in those blocks).
//
// Eviction (optional): sequences register themselves; when the budget is used up, allocate()
// takes the blocks of the least recently used sequence that is idle (not inside begin_use /
// end_use) and not pinned. That sequence learns it on its next begin_use. A block another
// sequence still references is never reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
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
  int32_t n_layer() const { return n_layer_; }
  // A block of `n_layer` layers (a layer group): n_layer · 2 · block_tokens rows.
  size_t block_bytes(int32_t n_layer) const {
    return size_t(n_layer) * 2 * size_t(block_tokens_) * row_bytes_;
  }
  // Offset of (layer, K = 0 / V = 1)'s rows inside a block (layer: its index in the block).
  size_t offset(int32_t layer, int kv) const {
    return (size_t(layer) * 2 + size_t(kv)) * size_t(block_tokens_) * row_bytes_;
  }

  // A block of every layer with one reference. Throws OutOfMemoryError when the budget is used
  // up (and, with eviction on, no idle unpinned sequence is left whose blocks would free memory).
  int32_t allocate() { return allocate(n_layer_); }
  // A block of n_layer (≤ the model's) layers. Free blocks of another size give their memory
  // back to the system when the budget has no room left for this one.
  int32_t allocate(int32_t n_layer);
  void retain(int32_t block);
  void release(int32_t block);  // back to the free list (or the cache, if published) at zero
  int32_t references(int32_t block) const;
  uint8_t* data(int32_t block) const;  // stays put while the block lives

  size_t max_blocks() const { return max_blocks_; }  // of every layer
  size_t blocks_in_use() const;                      // referenced by some sequence
  size_t bytes() const;                              // memory taken from the system

  // --- Prefix sharing (kv_pool_prefix.cpp) ---
  // Set before the pool is shared: the model's fingerprint, so equal tokens of another model
  // never match; a hash function to replace the default (tests force collisions with it).
  using TokenHash = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> tokens);
  void set_hash_seed(uint64_t seed) { hash_seed_ = seed; }
  void set_token_hash(TokenHash hash) { token_hash_ = hash; }
  // The chain hash of a block holding `tokens` after a block with hash `parent_hash` (for the
  // first block pass first_parent_hash()).
  uint64_t first_parent_hash() const { return hash_seed_; }
  uint64_t chain_hash(uint64_t parent_hash, std::span<const int32_t> tokens) const {
    return token_hash_(parent_hash, tokens);
  }
  // Publishes `block` (full, written, referenced by the caller) as holding `tokens`
  // (block_tokens() of them) right after block `parent` (-1 for positions 0..B-1). A block
  // already published stays as it is; another block under the same hash loses its entry.
  void publish(int32_t block, uint64_t hash, int32_t parent, std::span<const int32_t> tokens);
  // The block published under `hash` with these tokens after `parent` (which the caller holds),
  // with one more reference for the caller; -1 when there is none.
  int32_t lookup(uint64_t hash, int32_t parent, std::span<const int32_t> tokens);
  // Takes a block out of the index (its rows are about to change).
  void unpublish(int32_t block);
  // Whether the caller holds the only reference; if so the block leaves the index too, in the
  // same step (so no lookup can take it while it is being overwritten).
  bool make_writable(int32_t block);
  bool published(int32_t block) const;
  size_t cached_blocks() const;  // published, unreferenced, kept until memory is needed

  // --- Sequences and eviction (kv_pool_prefix.cpp) ---
  void set_evict(bool evict) { evict_ = evict; }  // before the pool is shared
  bool evicts() const { return evict_; }
  // A sequence whose block table is *table (the caller keeps the pointer current), and whose
  // sliding-window layers' table (entries -1 for released blocks) is *window_table, if any (that
  // pointer must stay valid until remove_sequence).
  int32_t add_sequence(const std::vector<int32_t>* table,
                       const std::vector<int32_t>* window_table = nullptr);
  // A moving table: hold() keeps the pool from reading it until move_sequence() gives its new
  // address.
  void hold(int32_t id);
  void move_sequence(int32_t id, const std::vector<int32_t>* table);
  // Forgets the sequence; returns whether it was evicted (its blocks already released).
  bool remove_sequence(int32_t id);
  // Marks the sequence busy (never evicted until end_use). Returns true when it was evicted
  // since its last use: its blocks went back to the pool and the caller must drop its table
  // without releasing them.
  bool begin_use(int32_t id);
  void end_use(int32_t id);
  void set_pinned(int32_t id, bool pinned);
  bool evicted(int32_t id) const;

 private:
  struct Block {
    int32_t refs = 0;
    int32_t layers = 0;  // of the block (0: its memory was given back)
    bool published = false;
    uint64_t hash = 0;
    int32_t parent = -1;          // the published block before it (-1: the first)
    uint32_t parent_version = 0;  // parent's version when this one was published
    uint32_t version = 0;         // bumped whenever its content stops being what was published
    uint64_t cached_since = 0;    // release tick while cached (0: not cached)
  };
  struct Sequence {
    const std::vector<int32_t>* table = nullptr;
    const std::vector<int32_t>* window_table = nullptr;  // its sliding-window layers (or null)
    uint64_t last_use = 0;
    int32_t busy = 0;  // begin_use / hold calls not yet ended
    bool pinned = false, evicted = false, live = false;
  };
  void release_locked(int32_t block);
  void unpublish_locked(int32_t block);
  bool uncache_oldest_locked();  // the oldest cached block goes to the free list; false if none
  bool evict_one_locked();       // frees some block by evicting a sequence; false if none can

  int32_t n_layer_, block_tokens_;
  KvElement element_;
  size_t row_bytes_, block_bytes_, max_blocks_ = 0, budget_bytes_, bytes_ = 0;
  mutable std::mutex mutex_;  // sequences of different threads share the pool
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::vector<Block> info_;
  std::vector<int32_t> free_;    // blocks with memory and no reference, not cached
  std::vector<int32_t> unused_;  // slots without memory
  std::vector<int32_t> tokens_;  // block_tokens_ per block: what a published block holds
  std::unordered_map<uint64_t, int32_t> index_;  // hash → published block
  size_t cached_ = 0;
  uint64_t tick_ = 0;
  uint64_t hash_seed_ = 0;
  TokenHash token_hash_;
  bool evict_ = false;
  std::vector<Sequence> sequences_;
  std::vector<int32_t> free_sequences_;
};

}  // namespace slm
