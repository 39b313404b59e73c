// Text normalization applied to each piece of text before pre-tokenization (Hugging Face
// `normalizer`): NFC/NFKC (utf8proc), Replace, Prepend, applied in order.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/tokenizer/regex.h"

namespace slm {

struct NormalizerStep {
  enum class Kind { kNfc, kNfkc, kReplace, kPrepend };
  Kind kind;
  std::string text;                    // Replace: the literal pattern; Prepend: the prefix
  std::string content;                 // Replace: the replacement
  std::shared_ptr<const Regex> regex;  // Replace with a {"Regex": ...} pattern
};

// Applies `steps` to `text`. Text that is not valid UTF-8 skips the Unicode normalization forms
// (utf8proc refuses it) rather than losing bytes.
std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text);

}  // namespace slm
