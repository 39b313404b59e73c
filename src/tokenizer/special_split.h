// Cutting added / special tokens written in the text out of it before segmentation, with one
// pass over the text through a byte trie built at load.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/flat_map.h"

namespace slm {

// A piece of the input: either literal text or one added token found in it.
struct Fragment {
  TokenId token;          // -1 for text
  std::string_view text;  // the text (empty for a token)
};

// A token matched in the text before segmentation, with Hugging Face's AddedToken options.
struct AddedToken {
  TokenId id = -1;
  bool special = false;      // matched only when the caller parses special tokens
  bool lstrip = false;       // the match also takes the whitespace before it
  bool rstrip = false;       // ... and the whitespace after it
  bool single_word = false;  // matched only where no word character touches either end
  bool normalized = false;   // matched in the normalized text, its own text normalized too
};

// A byte trie over token texts: finds every text that starts at a position of the input.
class TokenTrie {
 public:
  TokenTrie() { first_.fill(-1); }
  // Adds `text` (not empty) with `value` >= 0; a text added twice keeps its first value.
  void add(std::string_view text, int32_t value);
  bool empty() const { return values_.size() <= 1; }

  // Calls f(value, length) for each text that starts at text[at], shortest first.
  template <class F>
  void for_each_prefix(std::string_view text, size_t at, F&& f) const {
    if (at >= text.size()) return;
    int32_t node = first_[static_cast<unsigned char>(text[at])];
    for (size_t i = at + 1; node >= 0; ++i) {
      if (values_[static_cast<size_t>(node)] >= 0) f(values_[static_cast<size_t>(node)], i - at);
      if (i == text.size()) break;
      const uint64_t* next = edges_.find(edge(node, static_cast<unsigned char>(text[i])));
      node = next == nullptr ? -1 : static_cast<int32_t>(*next);
    }
  }
  // Whether some text starts with byte `b` (a cheap filter before for_each_prefix).
  bool may_start(unsigned char b) const { return first_[b] >= 0; }

 private:
  static uint64_t edge(int32_t node, unsigned char b) {
    return (static_cast<uint64_t>(node) << 8) | b;
  }
  std::array<int32_t, 256> first_;   // the node after the first byte, -1 for none
  FlatMap64 edges_;                  // (node, byte) -> node, below the first byte
  std::vector<int32_t> values_{-1};  // per node; node 0 is the root
};

// The added tokens of a tokenizer and the tries that find them, built once at load.
struct AddedTokenMatcher {
  // Hugging Face semantics (tokenizer.json): leftmost-longest matching with the AddedToken
  // options, tokens with `normalized` matched in the normalized text. Otherwise llama.cpp's
  // (GGUF): longest token first, each cut out of the text the previous ones left, raw text only.
  bool hf = false;
  std::vector<AddedToken> tokens;  // the tries' values index this
  // [0]: tokens matched without parse_special (not special); [1]: all of them.
  std::array<TokenTrie, 2> raw;
  std::array<TokenTrie, 2> normalized;
};

// Splits raw `text` on the added tokens matched in raw text (for llama.cpp vocabularies: all of
// them, control and unknown ones only when `parse_special`, user-defined ones always, as its
// tokenizer_st_partition does).
std::vector<Fragment> split_special(const Tokenizer::Impl& impl, std::string_view text,
                                    bool parse_special);

// Splits one normalized text fragment on the added tokens with `normalized` (Hugging Face's
// second pass); a single text fragment when there are none.
std::vector<Fragment> split_normalized(const Tokenizer::Impl& impl, std::string_view normalized,
                                       bool parse_special);

}  // namespace slm
