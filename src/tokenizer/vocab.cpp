#include "src/tokenizer/vocab.h"

#include <fmt/format.h>

#include "slm/error.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

void check_id(TokenId id, const char* what, int32_t n, std::string_view source) {
  if (id < -1 || id >= n) {
    throw FormatError(fmt::format("{}: {} token id {} is outside the vocabulary of {} tokens",
                                  source, what, id, n));
  }
}

}  // namespace

void validate_vocab(const Vocab& vocab, std::string_view source) {
  const int32_t n = vocab.size();
  if (n == 0) throw FormatError(fmt::format("{}: the vocabulary has no tokens", source));
  if (vocab.scores.size() != vocab.tokens.size()) {
    throw FormatError(fmt::format("{}: {} scores for {} tokens", source, vocab.scores.size(), n));
  }
  if (vocab.types.size() != vocab.tokens.size()) {
    throw FormatError(
        fmt::format("{}: {} token types for {} tokens", source, vocab.types.size(), n));
  }
  check_id(vocab.bos, "BOS", n, source);
  check_id(vocab.eos, "EOS", n, source);
  check_id(vocab.unk, "unknown", n, source);
  check_id(vocab.pad, "padding", n, source);
  check_id(vocab.eot, "EOT", n, source);
  for (int32_t id = 0; id < n; ++id) {
    const auto type = static_cast<int32_t>(vocab.types[id]);
    if (type < 0 || type > static_cast<int32_t>(TokenType::kByte)) {
      throw FormatError(fmt::format("{}: token {} has unknown token type {}", source, id, type));
    }
    if (vocab.types[id] == TokenType::kByte && parse_byte_token(vocab.tokens[id]) < 0) {
      throw FormatError(fmt::format("{}: byte token {} is spelled '{}', not <0xXX>", source, id,
                                    vocab.tokens[id]));
    }
  }
}

}  // namespace slm
