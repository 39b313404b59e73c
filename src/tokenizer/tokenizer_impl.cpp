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
  for (size_t b = 0; b < 256; ++b) {
    // A byte whose character is only an added (user-defined) token, as DeepSeek's "À" for 0xC0,
    // has no symbol: that token decodes to the character's UTF-8, not to the byte, so using it
    // would change the text. Such bytes never occur in valid UTF-8; encode refuses them.
    const TokenId id = impl.find(chars[b]);
    bpe.byte_symbol[b] = id >= 0 && vocab.types[static_cast<size_t>(id)] != TokenType::kUserDefined ? id : -1;
  }
  // A merge whose parts or result are not tokens can never apply (llama.cpp keeps such
  // entries too and they are inert there as well). The first (lowest-rank) occurrence of a pair
  // wins.
  auto add = [&](size_t rank, TokenId l, TokenId r, TokenId m) {
    if (l < 0 || r < 0 || m < 0) return;
    bpe.merges.insert(BpeModel::key(l, r),
                      (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(m));
  };
  bpe.merges.reserve(vocab.merges.size() + vocab.merge_ids.size());
  constexpr size_t kAhead = 16;  // the table is big: prefetch the slots of later merges
  for (size_t rank = 0; rank < vocab.merge_ids.size(); ++rank) {
    if (rank + kAhead < vocab.merge_ids.size()) {
      const auto& ahead = vocab.merge_ids[rank + kAhead];
      bpe.merges.prefetch(BpeModel::key(ahead[0], ahead[1]));
    }
    const auto& [l, r, m] = vocab.merge_ids[rank];
    add(rank, l, r, m);
  }
  std::string merged;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const auto& [left, right] = vocab.merges[rank];
    const TokenId l = impl.find(left);
    const TokenId r = impl.find(right);
    merged = left;
    merged += right;
    add(rank, l, r, impl.find(merged));
  }
  if (bpe.byte_level) return;

  // One-character tokens, for the first step of every word.
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const std::string& text = vocab.tokens[static_cast<size_t>(id)];
    if (!text.empty() && text.size() <= 4 &&
        utf8_len_from_lead(static_cast<unsigned char>(text[0])) == text.size() &&
        impl.find(text) == id) {
      bpe.char_ids.insert(BpeModel::char_key(text), static_cast<uint64_t>(id));
    }
  }
  // Word splitting needs U+2581 to be a token of its own (else unknown characters could fuse
  // across the cut) and merges applied to every word (ignore_merges looks at the whole word).
  constexpr size_t kMaxCrossing = 64;
  bpe.split_spm_words = !bpe.ignore_merges && impl.find(kSpmSpace) >= 0;
  for (TokenId id = 0; id < vocab.size() && bpe.split_spm_words; ++id) {
    const std::string& text = vocab.tokens[static_cast<size_t>(id)];
    std::vector<size_t> offsets;
    for (size_t at = text.find(kSpmSpace, 1); at != std::string::npos;
         at = text.find(kSpmSpace, at + 1)) {
      const bool after_space =
          at >= kSpmSpace.size() &&
          std::string_view(text).substr(at - kSpmSpace.size(), kSpmSpace.size()) == kSpmSpace;
      if (!after_space) offsets.push_back(at);
    }
    if (offsets.empty()) continue;
    if (bpe.crossing.size() == kMaxCrossing) {
      bpe.split_spm_words = false;  // too many to check at each cut: keep whole words
      bpe.crossing.clear();
      break;
    }
    bpe.crossing.emplace_back(text, std::move(offsets));
  }
}

void build_added(Tokenizer::Impl& impl) {
  const Vocab& vocab = impl.vocab;
  AddedTokenMatcher& m = impl.added;
  m.hf = impl.pipeline.hf_added_tokens;
  if (m.hf) {
    m.tokens = impl.pipeline.added_tokens;
  } else {
    // llama.cpp: control and unknown tokens only with parse_special, user-defined ones always;
    // longest first (so "<|end|>" is not cut out of "<|endoftext|>"), ids breaking ties.
    for (TokenId id = 0; id < vocab.size(); ++id) {
      const TokenType type = vocab.types[static_cast<size_t>(id)];
      if (!is_special_type(type) || vocab.tokens[static_cast<size_t>(id)].empty()) continue;
      m.tokens.push_back(AddedToken{id, type != TokenType::kUserDefined});
    }
    std::vector<TokenId> lstrip = vocab.lstrip_tokens;
    std::vector<TokenId> rstrip = vocab.rstrip_tokens;
    std::sort(lstrip.begin(), lstrip.end());
    std::sort(rstrip.begin(), rstrip.end());
    for (AddedToken& token : m.tokens) {
      token.lstrip = std::binary_search(lstrip.begin(), lstrip.end(), token.id);
      token.rstrip = std::binary_search(rstrip.begin(), rstrip.end(), token.id);
    }
    std::sort(m.tokens.begin(), m.tokens.end(), [&](const AddedToken& a, const AddedToken& b) {
      const size_t la = vocab.tokens[static_cast<size_t>(a.id)].size();
      const size_t lb = vocab.tokens[static_cast<size_t>(b.id)].size();
      return la != lb ? la > lb : a.id < b.id;
    });
  }
  for (size_t i = 0; i < m.tokens.size(); ++i) {
    const AddedToken& token = m.tokens[i];
    const std::string& text = vocab.tokens[static_cast<size_t>(token.id)];
    const auto value = static_cast<int32_t>(i);
    if (m.hf && token.normalized) {
      // Hugging Face matches a normalized token by its own normalized text.
      const std::string normalized = normalize(impl.pipeline.normalizer, text);
      if (!token.special) m.normalized[0].add(normalized, value);
      m.normalized[1].add(normalized, value);
    } else {
      if (!token.special) m.raw[0].add(text, value);
      m.raw[1].add(text, value);
    }
  }
}

}  // namespace

Tokenizer::Impl::Impl(Vocab v, TextPipeline p) : vocab(std::move(v)), pipeline(std::move(p)) {
  const int32_t n = vocab.size();
  if (vocab.token_index.empty()) {
    token_to_id.build(vocab.tokens);
  } else {
    token_to_id = std::move(vocab.token_index);
  }

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
  }
  build_added(*this);

  if (vocab.kind == VocabKind::kBpe) {
    build_bpe(*this);
    strip_decoded_space = vocab.strip_decoded_space;
  } else {
    strip_decoded_space = vocab.add_space_prefix;
  }
}

Tokenizer make_tokenizer(Vocab vocab, std::string_view source, TextPipeline pipeline) {
  validate_vocab(vocab, source);
  return Tokenizer(std::make_shared<const Tokenizer::Impl>(std::move(vocab), std::move(pipeline)));
}

}  // namespace slm
