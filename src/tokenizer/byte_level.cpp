#include "src/tokenizer/byte_level.h"

#include <unordered_map>

namespace slm {

namespace {

std::string utf8_of(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the others, in byte
// order, take the code points from U+0100 up.
std::array<std::string, 256> make_chars() {
  std::array<std::string, 256> chars;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    chars[static_cast<size_t>(b)] = utf8_of(printable ? static_cast<char32_t>(b) : next++);
  }
  return chars;
}

const std::unordered_map<std::string, unsigned char>& char_to_byte() {
  static const auto* map = [] {
    auto* m = new std::unordered_map<std::string, unsigned char>();
    const auto& chars = byte_level_chars();
    for (int b = 0; b < 256; ++b) (*m)[chars[static_cast<size_t>(b)]] = static_cast<unsigned char>(b);
    return m;
  }();
  return *map;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = make_chars();
  return chars;
}

void append_byte_level(std::string_view bytes, std::string& out) {
  const auto& chars = byte_level_chars();
  for (char c : bytes) out += chars[static_cast<unsigned char>(c)];
}

std::string byte_level_decode(std::string_view token) {
  const auto& map = char_to_byte();
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const auto lead = static_cast<unsigned char>(token[i]);
    const size_t n = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    const std::string ch(token.substr(i, n));
    const auto it = map.find(ch);
    if (it != map.end()) {
      out += static_cast<char>(it->second);
    } else {
      out += ch;
    }
    i += n;
  }
  return out;
}

}  // namespace slm
