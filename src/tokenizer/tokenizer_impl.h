// The state behind slm::Tokenizer: the vocabulary plus the lookup tables built from it once.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/flat_map.h"
#include "src/tokenizer/normalizer.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/special_split.h"
#include "src/tokenizer/token_index.h"
#include "src/tokenizer/vocab.h"

namespace slm {

struct BpeMerge {
  int32_t rank;  // lower merges first
  TokenId id;    // the merged token
};

// Merge table of a kBpe vocabulary, keyed by the ids of the pair.
struct BpeModel {
  FlatMap64 merges;  // key(left, right) -> rank << 32 | merged id
  bool byte_level = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;
  std::array<TokenId, 256> byte_symbol{};  // byte-level: the token of each byte's character
  // Not byte-level: the token of each one-character text (key: char_key).
  FlatMap64 char_ids;
  // SentencePiece-style vocabularies (U+2581 for spaces, often no pre-tokenizer): a word is cut
  // before each run of U+2581 that follows another character, since no merge can cross there,
  // except inside a literal occurrence of one of `crossing` (a token with U+2581 after another
  // character: text and the offsets of those U+2581).
  bool split_spm_words = false;
  std::vector<std::pair<std::string_view, std::vector<size_t>>> crossing;

  static uint64_t key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  // One UTF-8 character (1-4 bytes) as a key.
  static uint64_t char_key(std::string_view ch) {
    uint64_t k = ch.size();
    for (size_t i = 0; i < ch.size(); ++i)
      k |= static_cast<uint64_t>(static_cast<unsigned char>(ch[i])) << (8 * (i + 1));
    return k;
  }
  std::optional<BpeMerge> find(TokenId left, TokenId right) const {
    const uint64_t* v = merges.find(key(left, right));
    if (v == nullptr) return std::nullopt;
    return BpeMerge{static_cast<int32_t>(*v >> 32),
                    static_cast<TokenId>(static_cast<uint32_t>(*v))};
  }
};

// What a kBpe tokenizer does to text before the model sees it.
struct TextPipeline {
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  // Hugging Face tokenizer.json: the added_tokens with their options, matched with its
  // semantics. Otherwise (GGUF) the special-typed tokens are matched as llama.cpp does.
  bool hf_added_tokens = false;
  std::vector<AddedToken> added_tokens;
};

struct Tokenizer::Impl {
  explicit Impl(Vocab v, TextPipeline p = {});

  Vocab vocab;
  // Token text -> id over all tokens (any type), like SentencePiece's piece table. When a text
  // occurs twice the later id wins, as in llama.cpp.
  TokenIndex token_to_id;
  // Byte fallback: the token for each byte value (<0xXX>, else the 1-byte text, else unk, else
  // -1 when the vocabulary cannot encode that byte at all).
  std::array<TokenId, 256> byte_to_token{};
  // What each id renders as in decoded text: U+2581 -> ' ', byte tokens -> their byte, control
  // / unknown / unused tokens -> "" and user-defined tokens -> their text.
  std::vector<std::string> pieces;
  // Tokens matched literally in the text before segmentation (special_split.h).
  AddedTokenMatcher added;
  // kBpe only.
  BpeModel bpe;
  TextPipeline pipeline;
  bool strip_decoded_space = false;  // decode drops the first ' ' of the text

  TokenId find(std::string_view text) const { return token_to_id.find(text, vocab.tokens); }
};

// Validates `vocab` (FormatError naming `source`) and builds a Tokenizer over it.
Tokenizer make_tokenizer(Vocab vocab, std::string_view source = "vocabulary",
                         TextPipeline pipeline = {});

}  // namespace slm
