#define PCRE2_CODE_UNIT_WIDTH 8
#include "src/tokenizer/regex.h"

#include <fmt/format.h>
#include <pcre2.h>

#include "slm/error.h"

namespace slm {

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, bool literal, std::string_view source)
    : pattern_(pattern) {
  // UCP makes \s, \d, \w and the POSIX classes Unicode-aware, as in Oniguruma (what Hugging Face
  // tokenizers use). MULTILINE: Oniguruma's Ruby syntax makes '$' match before any newline.
  // MATCH_INVALID_UTF lets arbitrary bytes be searched without a UTF check failure.
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
  options |= literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_MULTILINE;
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                             &error, &offset, nullptr);
  if (code->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw FormatError(fmt::format("{}: bad pre-tokenizer regex at offset {}: {} (pattern '{}')",
                                  source, offset, reinterpret_cast<const char*>(message),
                                  pattern));
  }
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  code_ = std::move(code);
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t at = 0;
  while (at < text.size()) {
    const int rc = pcre2_match(code_->code, subject, text.size(), at, 0, data, nullptr);
    if (rc < 0) break;  // no match (or a match error): the rest is one gap
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end > begin) {
      out.emplace_back(begin, end);
      at = end;
    } else {
      // An empty match: step over one byte, then over any continuation bytes.
      at = begin + 1;
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
    }
  }
  pcre2_match_data_free(data);
}

}  // namespace slm
