// Merge-rank BPE (GPT-2 / Hugging Face `BPE` model) over one pre-tokenized word.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/flat_map.h"

namespace slm {

// The state of one encode call: the ids of words already segmented (text repeats words a lot;
// a per-call cache keeps Tokenizer free of shared mutable state) and scratch buffers reused from
// word to word.
class BpeCache {
 public:
  // Appends the cached ids of `word` to `out`; false when it is not cached.
  bool lookup(std::string_view word, std::vector<TokenId>& out) const;
  // Remembers ids as the segmentation of `word`.
  void store(std::string_view word, const TokenId* ids, size_t n);

  struct Symbol {
    TokenId id;
    int prev;
    int next;
  };
  struct Candidate {
    int32_t rank;
    int left;
    TokenId left_id;
    TokenId right_id;
  };
  std::vector<Symbol> symbols;   // scratch: the word's symbols
  std::vector<Candidate> queue;  // scratch: the merge heap
  std::string mapped;            // scratch: ignore_merges' byte-level text

 private:
  struct Entry {
    uint32_t text;   // offset in text_
    uint32_t size;   // bytes
    uint32_t ids;    // offset in ids_
    uint32_t count;  // ids
  };
  static uint64_t hash(std::string_view word);
  FlatMap64 index_;  // hash(word) -> entry
  std::vector<Entry> entries_;
  std::string text_;
  std::vector<TokenId> ids_;
};

// Appends the ids of `word` to `out`. Byte-level vocabularies start from one symbol per byte
// (its GPT-2 character); the others from one symbol per UTF-8 character, falling back to
// <0xXX> byte tokens or to unk. Then the adjacent pair with the lowest merge rank is merged
// (ties: the leftmost) until no pair has a merge.
void bpe_segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
                 BpeCache* cache);

}  // namespace slm
