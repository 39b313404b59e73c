// A compiled PCRE2 regular expression (UTF + Unicode properties, JIT) for pre-tokenizer splits.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slm {

class Regex {
 public:
  // `literal`: the pattern is plain text (Hugging Face's {"String": ...} patterns).
  // `source` names the file or table the pattern came from, for the FormatError on a bad pattern.
  Regex(std::string_view pattern, bool literal, std::string_view source);

  // Appends [begin, end) of each non-overlapping match in `text`, left to right. Empty matches
  // are skipped. Invalid UTF-8 in `text` never matches a character class but is never lost.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace slm
