#include "src/tokenizer/wordpiece.h"

#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

void wordpiece_segment(const Tokenizer::Impl& impl, std::string_view word,
                       std::vector<TokenId>& out) {
  if (word.empty()) return;
  // Character starts; a stray continuation byte belongs to the character before it.
  size_t chars = 0;
  for (char c : word) chars += is_continuation_byte(c) ? 0 : 1;
  if (chars > static_cast<size_t>(impl.vocab.max_word_chars)) {
    out.push_back(impl.vocab.unk);
    return;
  }
  const size_t mark = out.size();
  std::string key;
  size_t start = 0;
  while (start < word.size()) {
    TokenId found = -1;
    size_t found_end = start;
    // Longest first: shrink the end one character at a time.
    for (size_t end = word.size(); end > start;) {
      key.clear();
      if (start == 0) key += kSpmSpace;  // a word's first piece carries the phantom space
      key.append(word, start, end - start);
      found = impl.find(key);
      if (found >= 0) {
        found_end = end;
        break;
      }
      --end;
      while (end > start && is_continuation_byte(word[end])) --end;
    }
    if (found < 0) {
      out.resize(mark);  // the whole word is unknown
      out.push_back(impl.vocab.unk);
      return;
    }
    out.push_back(found);
    start = found_end;
  }
}

void wordpiece_to_phantom_form(Vocab& vocab, std::string_view continuing_prefix) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (vocab.types[i] != TokenType::kNormal) continue;
    std::string& text = vocab.tokens[i];
    if (!continuing_prefix.empty() && text.size() > continuing_prefix.size() &&
        text.starts_with(continuing_prefix)) {
      text.erase(0, continuing_prefix.size());
    } else {
      text.insert(0, kSpmSpace);
    }
  }
}

}  // namespace slm
