// Token text -> id over a vocabulary's token strings: open addressing on the texts' hashes,
// one flat array and no node per token (the vocabulary of Gemma 3 has 262k tokens, and loading
// a tokenizer looks up three texts per merge).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slm/tokenizer.h"

namespace slm {

class TokenIndex {
 public:
  // Indexes tokens[id] -> id; when a text occurs twice the later id wins.
  void build(const std::vector<std::string>& tokens) {
    // Load factor 1/3 to 2/3: short probes, and a table small enough to stay in cache.
    slots_.assign(std::bit_ceil(tokens.size() + tokens.size() / 2 + 16), Slot{0, -1});
    mask_ = slots_.size() - 1;
    for (size_t id = 0; id < tokens.size(); ++id) {
      const uint64_t h = hash(tokens[id]);
      for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        Slot& s = slots_[i];
        if (s.id < 0 || (s.tag == tag(h) && tokens[static_cast<size_t>(s.id)] == tokens[id])) {
          s = Slot{tag(h), static_cast<TokenId>(id)};
          break;
        }
      }
    }
  }

  bool empty() const { return slots_.empty(); }

  // The id of `text` among `tokens` (the vector given to build), or -1.
  TokenId find(std::string_view text, const std::vector<std::string>& tokens) const {
    return slots_.empty() ? -1 : probe(text, hash(text), tokens);
  }

  // find() of each of `texts` into `ids`, with the memory the lookups need prefetched for the
  // whole batch first: a big vocabulary's table and strings are cache misses, and this overlaps
  // them (loading Gemma 3 looks up 1.5 million texts).
  void find_batch(std::span<const std::string_view> texts, const std::vector<std::string>& tokens,
                  TokenId* ids) const {
    constexpr size_t kBatch = 32;
    std::array<uint64_t, kBatch> hashes;
    for (size_t begin = 0; begin < texts.size(); begin += kBatch) {
      const size_t n = std::min(kBatch, texts.size() - begin);
      for (size_t i = 0; i < n; ++i) {
        hashes[i] = hash(texts[begin + i]);
        __builtin_prefetch(&slots_[hashes[i] & mask_]);
      }
      for (size_t i = 0; i < n; ++i) {
        const Slot& s = slots_[hashes[i] & mask_];
        if (s.id >= 0) __builtin_prefetch(tokens[static_cast<size_t>(s.id)].data());
      }
      for (size_t i = 0; i < n; ++i) ids[begin + i] = probe(texts[begin + i], hashes[i], tokens);
    }
  }

 private:
  struct Slot {
    uint32_t tag;  // high hash bits: most mismatches skip the string compare
    TokenId id;    // -1: empty
  };
  TokenId probe(std::string_view text, uint64_t h, const std::vector<std::string>& tokens) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag(h) && tokens[static_cast<size_t>(s.id)] == text) return s.id;
    }
  }
  static uint64_t hash(std::string_view text) { return std::hash<std::string_view>{}(text); }
  static uint32_t tag(uint64_t h) { return static_cast<uint32_t>(h >> 32); }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace slm
