#include "src/tokenizer/spm.h"

#include <fmt/format.h>

#include <queue>

#include "slm/error.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

// A run of text in a doubly linked list; a symbol merged into its left neighbour has n == 0.
struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t n;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;  // bytes of the merged text, to spot pairs made stale by an earlier merge
};

// Max-heap order: higher score first, then the leftmost pair.
struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void spm_segment(const Tokenizer::Impl& impl, std::string_view text, std::vector<TokenId>& out) {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offs = 0; offs < text.size();) {
    const size_t n =
        std::min(utf8_len_from_lead(static_cast<unsigned char>(text[offs])), text.size() - offs);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back(Symbol{index - 1, offs + n == text.size() ? -1 : index + 1, offs, n});
    offs += n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    // Linked symbols are always adjacent in the text, so the pair is one contiguous view.
    const std::string_view merged = text.substr(l.start, l.n + r.n);
    const TokenId id = impl.find(merged);
    if (id < 0) return;
    queue.push(Bigram{left, right, impl.vocab.scores[id], merged.size()});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != top.size) continue;  // stale
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  // Every merged symbol is a token by construction; only single characters can be missing.
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].n);
    const TokenId id = impl.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      const auto byte = static_cast<unsigned char>(c);
      const TokenId byte_id = impl.byte_to_token[byte];
      if (byte_id < 0) {
        throw UnsupportedError(fmt::format(
            "cannot encode byte 0x{:02X}: the vocabulary has no byte token and no unknown token",
            byte));
      }
      out.push_back(byte_id);
    }
  }
}

}  // namespace slm
