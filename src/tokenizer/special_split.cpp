#include "src/tokenizer/special_split.h"

#include <utf8proc.h>

#include <algorithm>

#include "src/tokenizer/tokenizer_impl.h"

namespace slm {

void TokenTrie::add(std::string_view text, int32_t value) {
  if (text.empty() || value < 0) return;
  auto new_node = [&] {
    values_.push_back(-1);
    return static_cast<int32_t>(values_.size() - 1);
  };
  int32_t& first = first_[static_cast<unsigned char>(text[0])];
  if (first < 0) first = new_node();
  int32_t node = first;
  for (size_t i = 1; i < text.size(); ++i) {
    const uint64_t key = edge(node, static_cast<unsigned char>(text[i]));
    if (const uint64_t* next = edges_.find(key)) {
      node = static_cast<int32_t>(*next);
    } else {
      const int32_t child = new_node();
      edges_.insert(key, static_cast<uint64_t>(child));
      node = child;
    }
  }
  if (values_[static_cast<size_t>(node)] < 0) values_[static_cast<size_t>(node)] = value;
}

namespace {

// The code point that ends text[0, end), or -1 (none, or not valid UTF-8); `begin` gets where
// it starts.
int32_t code_point_before(std::string_view text, size_t end, size_t* begin_out = nullptr) {
  if (end == 0) return -1;
  size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) {
    --begin;
  }
  utf8proc_int32_t cp = -1;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + begin),
                                  static_cast<utf8proc_ssize_t>(end - begin), &cp);
  if (begin_out != nullptr) *begin_out = begin;
  return n == static_cast<utf8proc_ssize_t>(end - begin) ? cp : -1;
}

// The code point that starts text[at, ...) and its length (at least 1), cp -1 when invalid.
std::pair<int32_t, size_t> code_point_at(std::string_view text, size_t at) {
  utf8proc_int32_t cp = -1;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + at),
                                  static_cast<utf8proc_ssize_t>(text.size() - at), &cp);
  return {n > 0 ? cp : -1, n > 0 ? static_cast<size_t>(n) : 1};
}

// Unicode White_Space (Rust regex's \s, which Hugging Face strips with).
bool is_space(int32_t cp) {
  if (cp < 0) return false;
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85) return true;
  const auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

// Rust regex's Unicode \w (Hugging Face's single_word test): letters, marks, decimal digits,
// letter numbers, connector punctuation and the joiners. (Alphabetic's few symbols, such as
// circled letters, are left out.)
bool is_word(int32_t cp) {
  if (cp < 0) return false;
  if (cp == 0x200C || cp == 0x200D) return true;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// Where the whitespace run that ends at `end` begins.
size_t space_run_start(std::string_view text, size_t end) {
  while (end > 0) {
    size_t begin = end;
    if (!is_space(code_point_before(text, end, &begin))) break;
    end = begin;
  }
  return end;
}

// Where the whitespace run that starts at `at` ends.
size_t space_run_end(std::string_view text, size_t at) {
  while (at < text.size()) {
    const auto [cp, n] = code_point_at(text, at);
    if (!is_space(cp)) break;
    at += n;
  }
  return at;
}

void push_text(std::string_view text, size_t begin, size_t end, std::vector<Fragment>& out) {
  if (begin < end) out.push_back(Fragment{-1, text.substr(begin, end - begin)});
}

// Hugging Face's AddedVocabulary::find_matches: the leftmost-longest matches, left to right,
// each search resuming after the previous match (not after what its options strip or what a
// rejected single_word match covered).
void split_hf(const AddedTokenMatcher& m, const TokenTrie& trie, std::string_view text,
              std::vector<Fragment>& out) {
  size_t done = 0;  // the end of the previous token, with what it stripped
  for (size_t at = 0; at < text.size();) {
    if (!trie.may_start(static_cast<unsigned char>(text[at]))) {
      ++at;
      continue;
    }
    int32_t best = -1;
    size_t best_len = 0;
    trie.for_each_prefix(text, at, [&](int32_t value, size_t len) {
      best = value;
      best_len = len;
    });
    if (best < 0) {
      ++at;
      continue;
    }
    const AddedToken& token = m.tokens[static_cast<size_t>(best)];
    size_t start = at;
    size_t stop = at + best_len;
    at = stop;
    if (token.single_word && (is_word(code_point_before(text, start)) ||
                              (stop < text.size() && is_word(code_point_at(text, stop).first)))) {
      continue;
    }
    if (token.lstrip) start = std::max(space_run_start(text, start), done);
    if (token.rstrip) stop = space_run_end(text, stop);
    push_text(text, done, start, out);
    out.push_back(Fragment{token.id, {}});
    done = stop;
  }
  push_text(text, done, text.size(), out);
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// llama.cpp's tokenizer_st_partition: each token in priority order (the order of m.tokens)
// cuts all its leftmost non-overlapping occurrences out of the text the previous tokens left;
// with lstrip / rstrip (llama.cpp's token attributes) the token also drops the ASCII whitespace
// beside it, within the text fragment it was found in.
// Equivalent single pass: find every occurrence of every token, then accept occurrences by
// (token priority, position) when they overlap nothing taken before (a token or stripped
// whitespace); text is what stays untaken.
void split_llamacpp(const AddedTokenMatcher& m, const TokenTrie& trie, std::string_view text,
                    std::vector<Fragment>& out) {
  struct Hit {
    int32_t token;
    size_t at;
    size_t len;
  };
  std::vector<Hit> hits;
  for (size_t at = 0; at < text.size(); ++at) {
    if (!trie.may_start(static_cast<unsigned char>(text[at]))) continue;
    trie.for_each_prefix(text, at, [&](int32_t value, size_t len) {
      hits.push_back(Hit{value, at, len});
    });
  }
  if (hits.empty()) return push_text(text, 0, text.size(), out);
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.token != b.token ? a.token < b.token : a.at < b.at;
  });
  std::vector<bool> taken(text.size(), false);
  std::vector<Hit> accepted;
  for (const Hit& hit : hits) {
    bool free = true;
    for (size_t i = hit.at; i < hit.at + hit.len && free; ++i) free = !taken[i];
    if (!free) continue;
    for (size_t i = hit.at; i < hit.at + hit.len; ++i) taken[i] = true;
    const AddedToken& token = m.tokens[static_cast<size_t>(hit.token)];
    if (token.lstrip) {
      for (size_t i = hit.at; i > 0 && !taken[i - 1] && is_ascii_space(text[i - 1]); --i)
        taken[i - 1] = true;
    }
    if (token.rstrip) {
      for (size_t i = hit.at + hit.len; i < text.size() && !taken[i] && is_ascii_space(text[i]);
           ++i)
        taken[i] = true;
    }
    accepted.push_back(hit);
  }
  std::sort(accepted.begin(), accepted.end(),
            [](const Hit& a, const Hit& b) { return a.at < b.at; });
  // Text: the untaken runs between the tokens.
  auto push_free = [&](size_t begin, size_t end) {
    while (begin < end) {
      while (begin < end && taken[begin]) ++begin;
      size_t stop = begin;
      while (stop < end && !taken[stop]) ++stop;
      push_text(text, begin, stop, out);
      begin = stop;
    }
  };
  size_t done = 0;
  for (const Hit& hit : accepted) {
    push_free(done, hit.at);
    out.push_back(Fragment{m.tokens[static_cast<size_t>(hit.token)].id, {}});
    done = hit.at + hit.len;
  }
  push_free(done, text.size());
}

}  // namespace

std::vector<Fragment> split_special(const Tokenizer::Impl& impl, std::string_view text,
                                    bool parse_special) {
  const AddedTokenMatcher& m = impl.added;
  std::vector<Fragment> out;
  const TokenTrie& trie = m.raw[parse_special ? 1 : 0];
  if (trie.empty()) {
    push_text(text, 0, text.size(), out);
  } else if (m.hf) {
    split_hf(m, trie, text, out);
  } else {
    split_llamacpp(m, trie, text, out);
  }
  return out;
}

std::vector<Fragment> split_normalized(const Tokenizer::Impl& impl, std::string_view normalized,
                                       bool parse_special) {
  const AddedTokenMatcher& m = impl.added;
  std::vector<Fragment> out;
  const TokenTrie& trie = m.normalized[parse_special ? 1 : 0];
  if (!m.hf || trie.empty()) {
    push_text(normalized, 0, normalized.size(), out);
  } else {
    split_hf(m, trie, normalized, out);
  }
  return out;
}

}  // namespace slm
