#include "src/tokenizer/bpe.h"

#include <fmt/format.h>

#include <queue>

#include "slm/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

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

// Min-heap order: lowest rank first, then the leftmost pair.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void push_char(const Tokenizer::Impl& impl, std::string_view ch, std::vector<Symbol>& symbols) {
  const BpeModel& bpe = impl.bpe;
  auto add = [&](TokenId id) { symbols.push_back(Symbol{id, 0, 0}); };
  const TokenId id = impl.find(ch);
  if (id >= 0) return add(id);
  if (bpe.byte_fallback) {
    bool all = true;
    for (char c : ch) all = all && impl.byte_to_token[static_cast<unsigned char>(c)] >= 0;
    if (all) {
      for (char c : ch) add(impl.byte_to_token[static_cast<unsigned char>(c)]);
      return;
    }
  }
  const TokenId unk = impl.vocab.unk;
  if (unk < 0) {
    throw UnsupportedError(fmt::format(
        "cannot encode '{}': it is not in the vocabulary, which has no unknown token", ch));
  }
  // fuse_unk: a run of unknown characters is one unknown token.
  if (bpe.fuse_unk && !symbols.empty() && symbols.back().id == unk) return;
  add(unk);
}

void segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out) {
  const BpeModel& bpe = impl.bpe;
  if (bpe.ignore_merges) {
    TokenId whole = -1;
    if (bpe.byte_level) {
      std::string mapped;
      append_byte_level(word, mapped);
      whole = impl.find(mapped);
    } else {
      whole = impl.find(word);
    }
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  if (bpe.byte_level) {
    for (char c : word) {
      const TokenId id = bpe.byte_symbol[static_cast<unsigned char>(c)];
      if (id < 0) {
        throw UnsupportedError(fmt::format(
            "cannot encode byte 0x{:02X}: the byte-level vocabulary has no token for it",
            static_cast<unsigned char>(c)));
      }
      symbols.push_back(Symbol{id, 0, 0});
    }
  } else {
    for (size_t at = 0; at < word.size();) {
      const size_t n =
          std::min(utf8_len_from_lead(static_cast<unsigned char>(word[at])), word.size() - at);
      push_char(impl, word.substr(at, n), symbols);
      at += n;
    }
  }
  const int n = static_cast<int>(symbols.size());
  for (int i = 0; i < n; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = i + 1 < n ? i + 1 : -1;
  }

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateAfter> queue;
  auto try_add = [&](int left) {
    if (left < 0) return;
    const int right = symbols[left].next;
    if (right < 0) return;
    const BpeMerge* merge = bpe.find(symbols[left].id, symbols[right].id);
    if (merge != nullptr) {
      queue.push(Candidate{merge->rank, left, symbols[left].id, symbols[right].id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) try_add(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    // Stale when either side has changed since the pair was queued.
    if (left.id != top.left_id || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != top.right_id) continue;
    const BpeMerge* merge = bpe.find(left.id, right.id);
    left.id = merge->id;
    right.id = -1;  // removed
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev);
    try_add(top.left);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace

void bpe_segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
                 BpeCache* cache) {
  constexpr size_t kMaxCachedWord = 64;  // long words are rare repeats; do not bloat the cache
  if (cache == nullptr || word.size() > kMaxCachedWord) return segment(impl, word, out);
  const std::string key(word);
  if (const auto it = cache->find(key); it != cache->end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  const size_t start = out.size();
  segment(impl, word, out);
  cache->emplace(key, std::vector<TokenId>(out.begin() + static_cast<ptrdiff_t>(start), out.end()));
}

}  // namespace slm
