// Text normalization applied to each piece of text before pre-tokenization (Hugging Face
// `normalizer`): NFC/NFKC/NFD/NFKD (utf8proc), Replace, Prepend, Lowercase, Strip,
// StripAccents and BertNormalizer, applied in order.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/tokenizer/regex.h"

namespace slm {

struct NormalizerStep {
  enum class Kind {
    kNfc,
    kNfkc,
    kNfd,
    kNfkd,
    kReplace,
    kPrepend,
    kLowercase,
    kStrip,         // flags: kLeft / kRight
    kStripAccents,  // drops nonspacing marks (meant to follow NFD)
    kBert,          // flags: kCleanText / kChineseChars / kStripAccents / kLowercase
  };
  // Flags of kStrip and kBert.
  static constexpr unsigned kLeft = 1, kRight = 2;
  static constexpr unsigned kCleanText = 1, kChineseChars = 2, kStripAccentsFlag = 4,
                            kLowercaseFlag = 8;

  Kind kind;
  std::string text;                    // Replace: the literal pattern; Prepend: the prefix
  std::string content;                 // Replace: the replacement
  std::shared_ptr<const Regex> regex;  // Replace with a {"Regex": ...} pattern
  unsigned flags = 0;

  static NormalizerStep of(Kind kind, unsigned flags = 0) {
    return NormalizerStep{kind, {}, {}, nullptr, flags};
  }
};

// Whether `cp` is in the CJK ideograph blocks that BERT isolates (Hugging Face's
// is_chinese_char ranges, which llama.cpp copies).
bool is_bert_chinese_char(char32_t cp);

// Applies `steps` to `text`. Text that is not valid UTF-8 skips the Unicode normalization forms
// (utf8proc refuses it) rather than losing bytes.
std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text);

}  // namespace slm
