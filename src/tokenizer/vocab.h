// A tokenizer vocabulary as plain data, independent of the file it came from (GGUF today,
// tokenizer.json later). Ids index the three parallel arrays.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/token_index.h"

namespace slm {

// ggml's token types (tokenizer.ggml.token_type). 0 is "undefined" in ggml.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Which segmentation algorithm the vocabulary belongs to (tokenizer.ggml.model).
enum class VocabKind {
  kLlama,  // SentencePiece BPE with scores and byte fallback ("llama" in GGUF)
  kBpe,    // merge-rank BPE ("gpt2" in GGUF; Hugging Face `BPE` models)
  // Greedy longest-match WordPiece ("bert" in GGUF; Hugging Face `WordPiece`). Tokens are in
  // llama.cpp's form: a word's first piece starts with U+2581, continuations have no "##".
  kWordPiece,
};

struct Vocab {
  VocabKind kind = VocabKind::kLlama;
  std::vector<std::string> tokens;  // SentencePiece text: ' ' is written U+2581
  std::vector<float> scores;        // merge priority: higher merges first
  std::vector<TokenType> types;
  TokenId bos = -1;  // -1: the vocabulary has none
  TokenId eos = -1;
  TokenId unk = -1;
  TokenId pad = -1;
  TokenId eot = -1;              // end of turn, also ends generation
  bool add_bos = true;           // the model's metadata asks for BOS on a prompt
  bool add_eos = false;          // ... and EOS after it (kept for callers; encode never adds EOS)
  bool add_space_prefix = true;  // SentencePiece's "dummy prefix": prepend ' ' to the text

  // kBpe only. Merges in rank order (first = applied first), as (left, right) token texts.
  std::vector<std::pair<std::string, std::string>> merges;
  // The same resolved to ids, (left, right, merged) per rank and -1s where a part or the result
  // is not a token: loaders that can resolve them cheaply (tokenizer.json) fill this instead.
  std::vector<std::array<TokenId, 3>> merge_ids;
  bool byte_level = false;           // tokens are written in GPT-2's byte alphabet
  bool byte_fallback = false;        // characters without a token become <0xXX> byte tokens
  bool ignore_merges = false;        // a word that is itself a token is not segmented
  bool fuse_unk = false;             // consecutive unknown characters give one unk token
  bool strip_decoded_space = false;  // decode drops one leading ' ' (Hugging Face Strip decoder)

  // Optional: an index of `tokens` that the loader built anyway (else the tokenizer builds it).
  TokenIndex token_index;

  // llama.cpp's per-token strip attributes, which it sets from the model's name (e.g. rstrip on
  // Phi-3's special tokens): ids of special tokens whose match also drops the ASCII whitespace
  // before / after it. Hugging Face tokenizers use AddedToken options instead.
  std::vector<TokenId> lstrip_tokens;
  std::vector<TokenId> rstrip_tokens;

  // kWordPiece only: a word of more characters than this is one unk token.
  int32_t max_word_chars = 100;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

// Checks that the arrays have one entry per token, the special ids are in range and byte
// tokens are spelled <0xXX>. Throws FormatError naming `source` (a file or "vocabulary").
void validate_vocab(const Vocab& vocab, std::string_view source);

}  // namespace slm
