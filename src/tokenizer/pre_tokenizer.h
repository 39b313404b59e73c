// Pre-tokenization: cutting normalized text into words that BPE segments independently
// (Hugging Face `pre_tokenizer`: Split, Digits, ByteLevel's regex; llama.cpp's per-`pre` regex
// lists are Splits with the Isolated behaviour).
#pragma once

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "src/tokenizer/regex.h"

namespace slm {

// What a Split does with each match (Hugging Face's SplitDelimiterBehavior).
enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Which words a rewriting step prefixes (Hugging Face Metaspace's prepend_scheme).
enum class PrependScheme { kNever, kFirst, kAlways };

// A split (regex set) or, without a regex, a rewrite of every word's text: Metaspace
// (' ' -> replacement, then the prefix) and ByteLevel's add_prefix_space (prefix ' ').
struct PreTokenizerStep {
  std::shared_ptr<const Regex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;  // the matches are the gaps and the gaps the matches
  // Rewrite steps only.
  std::string replace_space;  // each ' ' becomes this; empty: spaces are kept
  std::string prefix;         // put before a word that does not already start with it
  // kFirst: only the word that starts the whole input (not text after an added token).
  PrependScheme prepend = PrependScheme::kNever;

  bool rewrites() const { return regex == nullptr; }
  static PreTokenizerStep split(std::shared_ptr<const Regex> regex,
                                SplitBehavior behavior = SplitBehavior::kIsolated,
                                bool invert = false) {
    PreTokenizerStep step;
    step.regex = std::move(regex);
    step.behavior = behavior;
    step.invert = invert;
    return step;
  }
};

using Span = std::pair<size_t, size_t>;  // [begin, end) into the text

// Applies each step to every span the previous steps produced. With no steps the whole text is
// one word. Empty words are dropped. Rewrite steps replace `text` (the spans index the new
// text); `at_input_start` says whether `text` begins the caller's whole input.
std::vector<Span> pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string& text,
                               bool at_input_start = true);
// For steps without rewrites: the spans index `text` itself.
std::vector<Span> pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text);

// How llama.cpp pre-tokenizes for a GGUF `tokenizer.ggml.pre` value: its regex list, as Isolated
// splits, plus the flags that go with the name.
struct GgufPreTokenizer {
  std::vector<PreTokenizerStep> steps;
  bool ignore_merges = false;  // a word that is a whole token is not merged (Llama 3)
  bool add_bos = false;        // llama.cpp's default for add_bos_token with this name
};
// Throws UnsupportedError naming `source` for a name it does not know.
GgufPreTokenizer gguf_pre_tokenizer(std::string_view pre, std::string_view source);

// Hugging Face BertPreTokenizer: whitespace removed, each punctuation character a word.
std::vector<PreTokenizerStep> bert_pre_tokenizer(std::string_view source);
// The character class of Hugging Face's BERT punctuation: ASCII punctuation and \p{P}.
inline constexpr const char* kBertPunctuation = "[\\p{P}!-/:-@\\[-`{-~]";

// GPT-2's split (Hugging Face ByteLevel with use_regex).
std::shared_ptr<const Regex> gpt2_regex();

}  // namespace slm
