#include "src/tokenizer/tokenizer_impl.h"

#include <algorithm>

#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

const char kHex[] = "0123456789ABCDEF";

bool is_special_type(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUnknown ||
         type == TokenType::kUserDefined;
}

}  // namespace

Tokenizer::Impl::Impl(Vocab v) : vocab(std::move(v)) {
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
        pieces[id] = spm_unescape(text);
        break;
      case TokenType::kByte:
        pieces[id] = std::string(1, static_cast<char>(parse_byte_token(text)));
        break;
      case TokenType::kUserDefined:
        pieces[id] = text;
        break;
      default:  // control, unknown, unused, undefined: not text
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
}

Tokenizer make_tokenizer(Vocab vocab, std::string_view source) {
  validate_vocab(vocab, source);
  return Tokenizer(std::make_shared<const Tokenizer::Impl>(std::move(vocab)));
}

}  // namespace slm
