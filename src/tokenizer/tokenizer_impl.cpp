#include "src/tokenizer/tokenizer_impl.h"

#include <algorithm>

#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

const char kHex[] = "0123456789ABCDEF";

bool is_special_type(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUnknown ||
         type == TokenType::kUserDefined;
}

// The text a normal token of a kBpe vocabulary decodes to.
std::string bpe_piece(const Vocab& vocab, const std::string& text) {
  return vocab.byte_level ? byte_level_decode(text) : spm_unescape(text);
}

void build_bpe(Tokenizer::Impl& impl) {
  const Vocab& vocab = impl.vocab;
  BpeModel& bpe = impl.bpe;
  bpe.byte_level = vocab.byte_level;
  bpe.byte_fallback = vocab.byte_fallback;
  bpe.ignore_merges = vocab.ignore_merges;
  bpe.fuse_unk = vocab.fuse_unk;
  const auto& chars = byte_level_chars();
  for (size_t b = 0; b < 256; ++b) bpe.byte_symbol[b] = impl.find(chars[b]);
  bpe.merges.reserve(vocab.merges.size());
  std::string merged;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const auto& [left, right] = vocab.merges[rank];
    const TokenId l = impl.find(left);
    const TokenId r = impl.find(right);
    merged = left;
    merged += right;
    const TokenId m = impl.find(merged);
    // A merge whose parts or result are not tokens can never apply (llama.cpp keeps such
    // entries too and they are inert there as well).
    if (l < 0 || r < 0 || m < 0) continue;
    // The first (lowest-rank) occurrence of a pair wins.
    bpe.merges.emplace(BpeModel::key(l, r), BpeMerge{static_cast<int32_t>(rank), m});
  }
}

}  // namespace

Tokenizer::Impl::Impl(Vocab v, TextPipeline p)
    : vocab(std::move(v)), pipeline(std::move(p)) {
  const int32_t n = vocab.size();
  token_to_id.reserve(static_cast<size_t>(n));
  for (TokenId id = 0; id < n; ++id) token_to_id[vocab.tokens[id]] = id;

  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    TokenId id = find(std::string_view(name, sizeof(name)));
    if (id < 0) id = find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    byte_to_token[static_cast<size_t>(b)] = id >= 0 ? id : vocab.unk;
  }

  pieces.resize(static_cast<size_t>(n));
  for (TokenId id = 0; id < n; ++id) {
    const std::string& text = vocab.tokens[id];
    switch (vocab.types[id]) {
      case TokenType::kNormal:
      case TokenType::kUndefined:
        pieces[id] = vocab.kind == VocabKind::kBpe ? bpe_piece(vocab, text) : spm_unescape(text);
        break;
      case TokenType::kByte:
        pieces[id] = std::string(1, static_cast<char>(parse_byte_token(text)));
        break;
      case TokenType::kUserDefined:
        // SentencePiece-style BPE writes added whitespace tokens with U+2581 (Gemma's "▁▁"),
        // which Hugging Face's Replace decoder turns into spaces; byte-level added tokens are
        // plain text (llama.cpp renders them as they are).
        pieces[id] = vocab.kind == VocabKind::kBpe && !vocab.byte_level ? spm_unescape(text) : text;
        break;
      default:  // control, unknown, unused: not text
        break;
    }
    if (is_special_type(vocab.types[id]) && !text.empty()) special_tokens.push_back(id);
  }
  // Longest first, so "<|end|>" is not cut out of "<|endoftext|>"; ids break ties so the
  // order does not depend on the sort implementation.
  std::sort(special_tokens.begin(), special_tokens.end(), [&](TokenId a, TokenId b) {
    const size_t la = vocab.tokens[a].size();
    const size_t lb = vocab.tokens[b].size();
    return la != lb ? la > lb : a < b;
  });

  if (vocab.kind == VocabKind::kBpe) {
    build_bpe(*this);
    strip_decoded_space = vocab.strip_decoded_space;
  } else {
    strip_decoded_space = vocab.add_space_prefix;
  }
}

Tokenizer make_tokenizer(Vocab vocab, std::string_view source, TextPipeline pipeline) {
  validate_vocab(vocab, source);
  return Tokenizer(
      std::make_shared<const Tokenizer::Impl>(std::move(vocab), std::move(pipeline)));
}

}  // namespace slm
