// The state behind slm::Tokenizer: the vocabulary plus the lookup tables built from it once.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/normalizer.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/vocab.h"

namespace slm {

struct BpeMerge {
  int32_t rank;  // lower merges first
  TokenId id;    // the merged token
};

// Merge table of a kBpe vocabulary, keyed by the ids of the pair.
struct BpeModel {
  std::unordered_map<uint64_t, BpeMerge> merges;
  bool byte_level = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;
  std::array<TokenId, 256> byte_symbol{};  // byte-level: the token of each byte's character

  static uint64_t key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const BpeMerge* find(TokenId left, TokenId right) const {
    const auto it = merges.find(key(left, right));
    return it == merges.end() ? nullptr : &it->second;
  }
};

// What a kBpe tokenizer does to text before the model sees it.
struct TextPipeline {
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
};

struct Tokenizer::Impl {
  explicit Impl(Vocab v, TextPipeline p = {});

  Vocab vocab;
  // Token text -> id over all tokens (any type), like SentencePiece's piece table. When a text
  // occurs twice the later id wins, as in llama.cpp. Keys view into vocab.tokens.
  std::unordered_map<std::string_view, TokenId> token_to_id;
  // Byte fallback: the token for each byte value (<0xXX>, else the 1-byte text, else unk, else
  // -1 when the vocabulary cannot encode that byte at all).
  std::array<TokenId, 256> byte_to_token{};
  // What each id renders as in decoded text: U+2581 -> ' ', byte tokens -> their byte, control
  // / unknown / unused tokens -> "" and user-defined tokens -> their text.
  std::vector<std::string> pieces;
  // Tokens matched literally in the text before segmentation, longest text first:
  // control and unknown ones only with parse_special, user-defined ones always (llama.cpp).
  std::vector<TokenId> special_tokens;
  // kBpe only.
  BpeModel bpe;
  TextPipeline pipeline;
  bool strip_decoded_space = false;  // decode drops the first ' ' of the text

  TokenId find(std::string_view text) const {
    const auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
};

// Validates `vocab` (FormatError naming `source`) and builds a Tokenizer over it.
Tokenizer make_tokenizer(Vocab vocab, std::string_view source = "vocabulary",
                         TextPipeline pipeline = {});

}  // namespace slm
