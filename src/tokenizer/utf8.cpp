#include "src/tokenizer/utf8.h"

#include <cstdint>

namespace slm {

void append_spm_escaped(std::string_view text, std::string& out) {
  for (char c : text) {
    if (c == ' ') {
      out += kSpmSpace;
    } else {
      out += c;
    }
  }
}

std::string spm_unescape(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  size_t i = 0;
  while (i < piece.size()) {
    if (piece.substr(i, kSpmSpace.size()) == kSpmSpace) {
      out += ' ';
      i += kSpmSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// How many bytes of a valid sequence start at s[0] (1..4), 0 if s[0..] is a valid but
// incomplete prefix, or -1 if s[0] cannot start a valid sequence here (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
int valid_sequence_length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  int len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i]);
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) return -1;
  }
  return len;
}

}  // namespace

int parse_byte_token(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  const int hi = hex_digit(token[3]);
  const int lo = hex_digit(token[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

void drain_utf8(std::string& pending, std::string& out, bool final) {
  size_t i = 0;
  while (i < pending.size()) {
    const int len = valid_sequence_length(std::string_view(pending).substr(i));
    if (len > 0) {
      out.append(pending, i, static_cast<size_t>(len));
      i += static_cast<size_t>(len);
    } else if (len < 0) {
      out += kReplacementChar;
      ++i;
    } else {
      // A valid prefix that runs to the end: wait for more bytes, or give up when final.
      if (!final) break;
      out += kReplacementChar;
      i = pending.size();
    }
  }
  pending.erase(0, i);
}

}  // namespace slm
