// An open-addressing hash map from 64-bit keys to 64-bit values, for the tokenizer's hot
// lookups (merge pairs, trie edges, characters): one probe sequence over two flat arrays, no
// allocation per entry and no pointer chasing, unlike std::unordered_map.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace slm {

class FlatMap64 {
 public:
  // The one key that cannot be stored (it marks empty slots).
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  // Room for `n` entries at a load factor of at most 3/4 (drops what is stored).
  void reserve(size_t n) {
    const size_t capacity = std::bit_ceil(n + n / 3 + 16);
    keys_.assign(capacity, kEmpty);
    values_.assign(capacity, 0);
    mask_ = capacity - 1;
    size_ = 0;
  }

  // Stores key -> value unless the key is already there (the first value wins); returns
  // whether it was stored. Grows as needed.
  bool insert(uint64_t key, uint64_t value) {
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return false;
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        values_[i] = value;
        ++size_;
        return true;
      }
    }
  }

  // The value of `key`, or nullptr.
  const uint64_t* find(uint64_t key) const {
    if (size_ == 0) return nullptr;
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

  // Starts loading the first slot of `key` into the cache (batch inserts into a big table).
  void prefetch(uint64_t key) const {
    if (!keys_.empty()) __builtin_prefetch(&keys_[slot(key)]);
  }

  size_t size() const { return size_; }

 private:
  size_t slot(uint64_t key) const {
    // Fibonacci hashing: the multiply spreads the id pairs' low bits over the high bits.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }
  void grow() {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<uint64_t> values = std::move(values_);
    reserve(keys.size() > 16 ? keys.size() : 16);  // doubles the capacity
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] != kEmpty) insert(keys[i], values[i]);
    }
  }

  std::vector<uint64_t> keys_;
  std::vector<uint64_t> values_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace slm
