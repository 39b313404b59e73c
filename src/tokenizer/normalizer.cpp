#include "src/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

namespace slm {

namespace {

void unicode_form(std::string& text, bool compat) {
  if (text.empty()) return;
  // Pure ASCII is already in every normalization form.
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return;
  utf8proc_uint8_t* result = nullptr;
  const auto options = static_cast<utf8proc_option_t>(
      UTF8PROC_STABLE | UTF8PROC_COMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &result, options);
  if (n >= 0) text.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
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
        unicode_form(out, false);
        break;
      case NormalizerStep::Kind::kNfkc:
        unicode_form(out, true);
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
