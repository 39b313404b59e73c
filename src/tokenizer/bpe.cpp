#include "src/tokenizer/bpe.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "slm/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {

uint64_t BpeCache::hash(std::string_view word) {
  const uint64_t h = std::hash<std::string_view>{}(word);
  return h == FlatMap64::kEmpty ? 0 : h;
}

bool BpeCache::lookup(std::string_view word, std::vector<TokenId>& out) const {
  const uint64_t* at = index_.find(hash(word));
  if (at == nullptr) return false;
  const Entry& e = entries_[static_cast<size_t>(*at)];
  // A 64-bit hash collision is possible in principle: the text decides.
  if (std::string_view(text_).substr(e.text, e.size) != word) return false;
  out.insert(out.end(), ids_.begin() + e.ids, ids_.begin() + e.ids + e.count);
  return true;
}

void BpeCache::store(std::string_view word, const TokenId* ids, size_t n) {
  if (!index_.insert(hash(word), entries_.size())) return;  // a colliding word stays uncached
  entries_.push_back(Entry{static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(word.size()),
                           static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(n)});
  text_ += word;
  ids_.insert(ids_.end(), ids, ids + n);
}

namespace {

using Symbol = BpeCache::Symbol;
using Candidate = BpeCache::Candidate;

// Heap order: lowest rank on top, then the leftmost pair.
bool after(const Candidate& a, const Candidate& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

void push_char(const Tokenizer::Impl& impl, std::string_view ch, std::vector<Symbol>& symbols) {
  const BpeModel& bpe = impl.bpe;
  auto add = [&](TokenId id) { symbols.push_back(Symbol{id, 0, 0}); };
  if (ch.size() <= 4) {
    if (const uint64_t* id = bpe.char_ids.find(BpeModel::char_key(ch)))
      return add(static_cast<TokenId>(*id));
  }
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

void segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
             BpeCache& scratch) {
  const BpeModel& bpe = impl.bpe;
  if (bpe.ignore_merges) {
    TokenId whole = -1;
    if (bpe.byte_level) {
      scratch.mapped.clear();
      append_byte_level(word, scratch.mapped);
      whole = impl.find(scratch.mapped);
    } else {
      whole = impl.find(word);
    }
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }

  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
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
  if (n == 1) {
    out.push_back(symbols[0].id);
    return;
  }
  for (int i = 0; i < n; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = i + 1 < n ? i + 1 : -1;
  }

  std::vector<Candidate>& queue = scratch.queue;
  queue.clear();
  auto try_add = [&](int left, bool heapify) {
    if (left < 0) return;
    const int right = symbols[left].next;
    if (right < 0) return;
    if (const auto merge = bpe.find(symbols[left].id, symbols[right].id)) {
      queue.push_back(Candidate{merge->rank, left, symbols[left].id, symbols[right].id});
      if (heapify) std::push_heap(queue.begin(), queue.end(), after);
    }
  };
  for (int i = 0; i + 1 < n; ++i) try_add(i, false);
  std::make_heap(queue.begin(), queue.end(), after);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), after);
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[top.left];
    // Stale when either side has changed since the pair was queued.
    if (left.id != top.left_id || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != top.right_id) continue;
    left.id = bpe.find(left.id, right.id)->id;
    right.id = -1;  // removed
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, true);
    try_add(top.left, true);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

// Segments `word` through the cache (long words are rare repeats: they would only bloat it).
void segment_cached(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
                    BpeCache& cache) {
  constexpr size_t kMaxCachedWord = 64;
  if (word.size() > kMaxCachedWord) return segment(impl, word, out, cache);
  if (cache.lookup(word, out)) return;
  const size_t start = out.size();
  segment(impl, word, out, cache);
  cache.store(word, out.data() + start, out.size() - start);
}

bool starts_spm_space(std::string_view text, size_t at) {
  return text.substr(at, kSpmSpace.size()) == kSpmSpace;
}

// Whether a token of `crossing` occurs in `word` over the cut at `at`.
bool crossed(const BpeModel& bpe, std::string_view word, size_t at) {
  for (const auto& [text, offsets] : bpe.crossing) {
    for (const size_t k : offsets) {
      if (k <= at && word.substr(at - k, text.size()) == text) return true;
    }
  }
  return false;
}

}  // namespace

void bpe_segment(const Tokenizer::Impl& impl, std::string_view word, std::vector<TokenId>& out,
                 BpeCache* cache) {
  BpeCache local;
  BpeCache& c = cache != nullptr ? *cache : local;
  const BpeModel& bpe = impl.bpe;
  if (!bpe.split_spm_words) return segment_cached(impl, word, out, c);
  // Cut before each run of U+2581 that follows another character (see BpeModel).
  size_t begin = 0;
  for (size_t at = 1; at < word.size(); ++at) {
    if (!starts_spm_space(word, at) ||
        (at >= kSpmSpace.size() && starts_spm_space(word, at - kSpmSpace.size()))) {
      continue;
    }
    if (crossed(bpe, word, at)) continue;
    segment_cached(impl, word.substr(begin, at - begin), out, c);
    begin = at;
  }
  segment_cached(impl, word.substr(begin), out, c);
}

}  // namespace slm
