// Small UTF-8 helpers for the tokenizer: character lengths, complete-sequence scanning,
// SentencePiece's space escape and <0xXX> byte tokens.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace slm {

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence that starts with `lead`, judged by its high bits only (a
// continuation or invalid byte counts as 1), as SentencePiece splits text into characters.
inline size_t utf8_len_from_lead(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Replaces every ' ' with U+2581 and appends the result to `out`.
void append_spm_escaped(std::string_view text, std::string& out);

// Replaces every U+2581 with ' '.
std::string spm_unescape(std::string_view piece);

// The byte of a "<0xXX>" token, or -1 when `token` is not spelled that way.
int parse_byte_token(std::string_view token);

// Moves the valid, complete UTF-8 sequences at the front of `pending` to `out`. Bytes that can
// never start or continue a valid sequence become U+FFFD; an incomplete sequence at the end stays
// in `pending` (it may be completed by the next piece) unless `final`, when it becomes U+FFFD.
void drain_utf8(std::string& pending, std::string& out, bool final);

}  // namespace slm
