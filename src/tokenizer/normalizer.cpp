#include "src/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace slm {

bool is_bert_chinese_char(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

namespace {

bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }

// The Unicode normalization forms leave ASCII unchanged, and an ASCII character only ever
// combines with what follows it (a letter and a combining mark), never with what precedes it.
// So only each run of non-ASCII bytes, together with the character just before it, goes
// through utf8proc; the rest is copied (mixed-language text is mostly ASCII).
void unicode_form(std::string& text, utf8proc_option_t form) {
  const auto first = std::find_if_not(text.begin(), text.end(), is_ascii);
  if (first == text.end()) return;
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | form);
  std::string out(text.begin(), first == text.begin() ? first : first - 1);
  auto begin = text.begin() + static_cast<std::ptrdiff_t>(out.size());
  while (begin != text.end()) {
    const auto run = std::find_if_not(begin, text.end(), is_ascii);
    if (run == text.end()) {
      out.append(begin, run);
      break;
    }
    const auto start = run == begin ? run : run - 1;
    out.append(begin, start);
    const auto end = std::find_if(run, text.end(), is_ascii);
    utf8proc_uint8_t* result = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(&*start),
                     static_cast<utf8proc_ssize_t>(end - start), &result, options);
    if (n >= 0) {  // invalid UTF-8 stays as it is
      out.append(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
    } else {
      out.append(start, end);
    }
    std::free(result);
    begin = end;
  }
  text = std::move(out);
}

// Calls f(cp, bytes) for each character of `text`; a byte that does not start a valid UTF-8
// sequence comes as cp = -1 with that one byte, so callers can keep it unchanged.
template <typename F>
void for_each_char(std::string_view text, F&& f) {
  size_t i = 0;
  while (i < text.size()) {
    utf8proc_int32_t cp = -1;
    const utf8proc_ssize_t n =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                         static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    const size_t len = n > 0 ? static_cast<size_t>(n) : 1;
    f(n > 0 ? cp : -1, text.substr(i, len));
    i += len;
  }
}

void append_cp(std::string& out, utf8proc_int32_t cp) {
  utf8proc_uint8_t buf[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

// Rust's char::is_whitespace (the White_Space property), which Hugging Face uses.
bool is_white_space(utf8proc_int32_t cp) {
  if (cp < 0) return false;
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85) return true;
  const auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

bool is_nonspacing_mark(utf8proc_int32_t cp) {
  return cp >= 0 && utf8proc_category(cp) == UTF8PROC_CATEGORY_MN;
}

// Hugging Face BertNormalizer's is_control: any "other" category (Cc, Cf, Cs, Co, Cn) except
// the whitespace controls \t \n \r.
bool is_bert_control(utf8proc_int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

template <typename F>
void map_chars(std::string& text, F&& f) {
  std::string out;
  out.reserve(text.size());
  for_each_char(text, [&](utf8proc_int32_t cp, std::string_view bytes) { f(cp, bytes, out); });
  text.swap(out);
}

void lowercase(std::string& text) {
  map_chars(text, [](utf8proc_int32_t cp, std::string_view bytes, std::string& out) {
    if (cp < 0) {
      out += bytes;
    } else if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else {
      append_cp(out, utf8proc_tolower(cp));
    }
  });
}

void strip_accents(std::string& text) {
  map_chars(text, [](utf8proc_int32_t cp, std::string_view bytes, std::string& out) {
    if (!is_nonspacing_mark(cp)) out += bytes;
  });
}

void strip(std::string& text, unsigned flags) {
  size_t begin = 0, end = text.size();
  if (flags & NormalizerStep::kLeft) {
    bool stop = false;
    for_each_char(text, [&](utf8proc_int32_t cp, std::string_view bytes) {
      if (stop || !is_white_space(cp)) {
        stop = true;
        return;
      }
      begin += bytes.size();
    });
  }
  if (flags & NormalizerStep::kRight) {
    // The end of the last character that is not whitespace.
    size_t last = begin, at = 0;
    for_each_char(text, [&](utf8proc_int32_t cp, std::string_view bytes) {
      at += bytes.size();
      if (at > begin && !is_white_space(cp)) last = at;
    });
    end = last;
  }
  text = text.substr(begin, end - begin);
}

// Hugging Face BertNormalizer, in its order: clean text, isolate CJK, strip accents, lowercase.
void bert(std::string& text, unsigned flags) {
  if (flags & (NormalizerStep::kCleanText | NormalizerStep::kChineseChars)) {
    map_chars(text, [flags](utf8proc_int32_t cp, std::string_view bytes, std::string& out) {
      if (cp >= 0 && (flags & NormalizerStep::kCleanText)) {
        if (cp == 0 || cp == 0xFFFD || is_bert_control(cp)) return;
        if (is_white_space(cp)) {
          out += ' ';
          return;
        }
      }
      if (cp >= 0 && (flags & NormalizerStep::kChineseChars) &&
          is_bert_chinese_char(static_cast<char32_t>(cp))) {
        out += ' ';
        out += bytes;
        out += ' ';
        return;
      }
      out += bytes;
    });
  }
  if (flags & NormalizerStep::kStripAccentsFlag) {
    unicode_form(text, UTF8PROC_DECOMPOSE);
    strip_accents(text);
  }
  if (flags & NormalizerStep::kLowercaseFlag) lowercase(text);
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty() || text.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t at = 0;
  for (size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, at)) {
    out.append(text, at, hit - at);
    out += to;
    at = hit + from.size();
  }
  out.append(text, at);
  text.swap(out);
}

void replace_regex(std::string& text, const Regex& regex, std::string_view to) {
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all(text, matches);
  if (matches.empty()) return;
  std::string out;
  size_t at = 0;
  for (const auto& [begin, end] : matches) {
    out.append(text, at, begin - at);
    out += to;
    at = end;
  }
  out.append(text, at);
  text.swap(out);
}

}  // namespace

std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text) {
  std::string out(text);
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
        unicode_form(out, UTF8PROC_COMPOSE);
        break;
      case NormalizerStep::Kind::kNfkc:
        unicode_form(out, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
        break;
      case NormalizerStep::Kind::kNfd:
        unicode_form(out, UTF8PROC_DECOMPOSE);
        break;
      case NormalizerStep::Kind::kNfkd:
        unicode_form(out, static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
        break;
      case NormalizerStep::Kind::kLowercase:
        lowercase(out);
        break;
      case NormalizerStep::Kind::kStrip:
        strip(out, step.flags);
        break;
      case NormalizerStep::Kind::kStripAccents:
        strip_accents(out);
        break;
      case NormalizerStep::Kind::kBert:
        bert(out, step.flags);
        break;
      case NormalizerStep::Kind::kReplace:
        if (step.regex) {
          replace_regex(out, *step.regex, step.content);
        } else {
          replace_all(out, step.text, step.content);
        }
        break;
      case NormalizerStep::Kind::kPrepend:
        if (!out.empty()) out.insert(0, step.text);  // Hugging Face leaves empty text alone
        break;
    }
  }
  return out;
}

}  // namespace slm
