// Merge-rank BPE (GPT-2 / Hugging Face `BPE` model) over one pre-tokenized word.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slm/tokenizer.h"

namespace slm {

// Remembers the ids of words already segmented during one encode call (text repeats words a
// lot; a per-call cache keeps Tokenizer free of shared mutable state).
using BpeCache = std::unordered_map<std::string, std::vector<TokenId>>;

// Appends the ids of `word` to `out`. Byte-level vocabularies start from one symbol per byte
// (its GPT-2 character); the others from one symbol per UTF-8 character, falling back to
// <0xXX> byte tokens or to unk. Then the adjacent pair with the lowest merge rank is merged
// (ties: the leftmost) until no pair has a merge.
void bpe_segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
                 BpeCache* cache);

}  // namespace slm
