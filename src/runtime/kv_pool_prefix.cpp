// KvBlockPool's index of published blocks (prefix sharing) and its registry of sequences
// (eviction). See kv_pool.h.
#include <algorithm>
#include <array>

#include "src/runtime/kv_pool.h"

namespace slm {

void KvBlockPool::publish(int32_t block, uint64_t hash, int32_t parent,
                          std::span<const int32_t> tokens) {
  std::lock_guard lock(mutex_);
  Block& b = info_[size_t(block)];
  if (b.published || tokens.size() != size_t(block_tokens_)) return;
  // A child of a block that is not in the index could never be found.
  if (parent >= 0 && !info_[size_t(parent)].published) return;
  const auto it = index_.find(hash);
  if (it != index_.end()) {
    const Block& other = info_[size_t(it->second)];
    const bool stale =
        other.parent >= 0 && info_[size_t(other.parent)].version != other.parent_version;
    if (!stale) return;  // the first publisher keeps the entry, so chains stay whole
    unpublish_locked(it->second);
  }
  index_.emplace(hash, block);
  b.published = true;
  b.hash = hash;
  b.parent = parent;
  b.parent_version = parent >= 0 ? info_[size_t(parent)].version : 0;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + ptrdiff_t(size_t(block) * tokens.size()));
}

int32_t KvBlockPool::lookup(uint64_t hash, int32_t parent, std::span<const int32_t> tokens) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(hash);
  if (it == index_.end() || tokens.size() != size_t(block_tokens_)) return -1;
  const int32_t found = it->second;
  Block& b = info_[size_t(found)];
  // The collision guard: the same tokens after the very block the caller holds (whose own
  // match was checked the same way), so the whole prefix is equal, not only its hash.
  if (b.parent != parent) return -1;
  if (parent >= 0 && info_[size_t(parent)].version != b.parent_version) return -1;
  if (!std::equal(tokens.begin(), tokens.end(),
                  tokens_.begin() + ptrdiff_t(size_t(found) * tokens.size()))) {
    return -1;
  }
  if (b.refs == 0) {  // back from the cache
    b.cached_since = 0;
    --cached_;
  }
  ++b.refs;
  return found;
}

void KvBlockPool::unpublish(int32_t block) {
  std::lock_guard lock(mutex_);
  unpublish_locked(block);
}

bool KvBlockPool::make_writable(int32_t block) {
  std::lock_guard lock(mutex_);
  if (info_[size_t(block)].refs != 1) return false;
  unpublish_locked(block);
  return true;
}

void KvBlockPool::unpublish_locked(int32_t block) {
  Block& b = info_[size_t(block)];
  if (!b.published) return;
  index_.erase(b.hash);
  b.published = false;
  ++b.version;        // its children, published after this content, no longer follow it
  if (b.refs == 0) {  // was cached: now plainly free
    b.cached_since = 0;
    --cached_;
    free_.push_back(block);
  }
}

bool KvBlockPool::published(int32_t block) const {
  std::lock_guard lock(mutex_);
  return info_[size_t(block)].published;
}

size_t KvBlockPool::cached_blocks() const {
  std::lock_guard lock(mutex_);
  return cached_;
}

bool KvBlockPool::uncache_oldest_locked() {
  if (cached_ == 0) return false;
  int32_t oldest = -1;
  for (size_t i = 0; i < info_.size(); ++i) {
    const Block& b = info_[i];
    if (b.cached_since != 0 &&
        (oldest < 0 || b.cached_since < info_[size_t(oldest)].cached_since)) {
      oldest = int32_t(i);
    }
  }
  unpublish_locked(oldest);  // moves it to the free list
  return true;
}

int32_t KvBlockPool::add_sequence(const std::vector<int32_t>* table,
                                  const std::vector<int32_t>* window_table) {
  std::lock_guard lock(mutex_);
  int32_t id;
  if (!free_sequences_.empty()) {
    id = free_sequences_.back();
    free_sequences_.pop_back();
  } else {
    id = int32_t(sequences_.size());
    sequences_.emplace_back();
  }
  sequences_[size_t(id)] = {
      .table = table, .window_table = window_table, .last_use = ++tick_, .live = true};
  return id;
}

void KvBlockPool::hold(int32_t id) {
  std::lock_guard lock(mutex_);
  ++sequences_[size_t(id)].busy;
}

void KvBlockPool::move_sequence(int32_t id, const std::vector<int32_t>* table) {
  std::lock_guard lock(mutex_);
  sequences_[size_t(id)].table = table;
  --sequences_[size_t(id)].busy;
}

bool KvBlockPool::remove_sequence(int32_t id) {
  std::lock_guard lock(mutex_);
  Sequence& s = sequences_[size_t(id)];
  const bool evicted = s.evicted;
  s = {};
  free_sequences_.push_back(id);
  return evicted;
}

bool KvBlockPool::begin_use(int32_t id) {
  std::lock_guard lock(mutex_);
  Sequence& s = sequences_[size_t(id)];
  ++s.busy;
  const bool evicted = s.evicted;
  s.evicted = false;  // told once; the owner now drops its table
  return evicted;
}

void KvBlockPool::end_use(int32_t id) {
  std::lock_guard lock(mutex_);
  Sequence& s = sequences_[size_t(id)];
  --s.busy;
  s.last_use = ++tick_;
}

void KvBlockPool::set_pinned(int32_t id, bool pinned) {
  std::lock_guard lock(mutex_);
  sequences_[size_t(id)].pinned = pinned;
}

bool KvBlockPool::evicted(int32_t id) const {
  std::lock_guard lock(mutex_);
  return sequences_[size_t(id)].evicted;
}

// The least recently used idle, unpinned sequence that holds a block no other sequence holds
// (evicting one whose blocks are all shared would free nothing) gives back all its blocks, those
// of its sliding-window table too (where -1 marks a block released already).
bool KvBlockPool::evict_one_locked() {
  const auto tables = [](const Sequence& s) { return std::array{s.table, s.window_table}; };
  Sequence* victim = nullptr;
  for (Sequence& s : sequences_) {
    if (!s.live || s.busy > 0 || s.pinned || s.evicted) continue;
    if (victim != nullptr && victim->last_use < s.last_use) continue;
    bool frees = false;
    for (const std::vector<int32_t>* table : tables(s)) {
      if (table == nullptr) continue;
      frees = frees || std::any_of(table->begin(), table->end(),
                                   [&](int32_t b) { return b >= 0 && info_[size_t(b)].refs == 1; });
    }
    if (frees) victim = &s;
  }
  if (victim == nullptr) return false;
  for (const std::vector<int32_t>* table : tables(*victim)) {
    if (table == nullptr) continue;
    for (const int32_t b : *table) {
      if (b >= 0) release_locked(b);
    }
  }
  victim->evicted = true;
  return true;
}

}  // namespace slm
