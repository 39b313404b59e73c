// GPT-2's byte-level alphabet: every byte value is written as one printable Unicode character so
// that byte-level BPE vocabularies are plain text (' ' is 'Ġ' U+0120, '\n' is 'Ċ' U+010A).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace slm {

// UTF-8 text of the character that stands for each byte.
const std::array<std::string, 256>& byte_level_chars();

// Appends the byte-level spelling of `bytes` to `out`.
void append_byte_level(std::string_view bytes, std::string& out);

// The bytes a byte-level token stands for; characters outside the alphabet are kept as they are
// (added tokens written in plain text).
std::string byte_level_decode(std::string_view token);

}  // namespace slm
