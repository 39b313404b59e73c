#include "src/tokenizer/pre_tokenizer.h"

#include <fmt/format.h>

#include <initializer_list>

#include "slm/error.h"

namespace slm {

namespace {

// Splits [begin, end) of `text` by `step`, appending the resulting words to `out`.
void split_span(const PreTokenizerStep& step, std::string_view text, Span span,
                std::vector<Span>& matches, std::vector<Span>& out) {
  matches.clear();
  step.regex->find_all(text.substr(span.first, span.second - span.first), matches);
  // Alternate gaps and matches over the span: (begin, end, is_match).
  struct Piece {
    size_t begin, end;
    bool match;
  };
  std::vector<Piece> pieces;
  size_t at = span.first;
  for (const auto& [b, e] : matches) {
    const size_t begin = span.first + b;
    const size_t end = span.first + e;
    if (begin > at) pieces.push_back({at, begin, step.invert});
    pieces.push_back({begin, end, !step.invert});
    at = end;
  }
  if (at < span.second) pieces.push_back({at, span.second, step.invert});

  switch (step.behavior) {
    case SplitBehavior::kIsolated:
      for (const Piece& p : pieces) out.emplace_back(p.begin, p.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Piece& p : pieces) {
        if (!p.match) out.emplace_back(p.begin, p.end);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      // A match ends the current word.
      size_t start = span.first;
      for (const Piece& p : pieces) {
        if (p.match) {
          out.emplace_back(start, p.end);
          start = p.end;
        }
      }
      if (start < span.second) out.emplace_back(start, span.second);
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // A match starts a new word.
      size_t start = span.first;
      for (const Piece& p : pieces) {
        if (p.match && p.begin > start) {
          out.emplace_back(start, p.begin);
          start = p.begin;
        }
      }
      if (start < span.second) out.emplace_back(start, span.second);
      break;
    }
    case SplitBehavior::kContiguous: {
      // Adjacent matches form one word; gaps are words of their own.
      for (size_t i = 0; i < pieces.size();) {
        size_t j = i + 1;
        if (pieces[i].match) {
          while (j < pieces.size() && pieces[j].match) ++j;
        }
        out.emplace_back(pieces[i].begin, pieces[j - 1].end);
        i = j;
      }
      break;
    }
  }
}

std::vector<PreTokenizerStep> isolated(std::initializer_list<const char*> patterns,
                                       std::string_view source) {
  std::vector<PreTokenizerStep> steps;
  for (const char* pattern : patterns) {
    steps.push_back(PreTokenizerStep{std::make_shared<const Regex>(pattern, false, source),
                                     SplitBehavior::kIsolated, false});
  }
  return steps;
}

// The regexes are the ones Hugging Face tokenizer.json files give for each family (as listed by
// llama.cpp); "(?i:'s|...)" is spelled out per letter, which means the same.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Characters that Unicode normalization would change are written \x{...} so that no editor
// or tool can silently replace them.
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
constexpr const char* kDeepseek3Words =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kBloom = " ?[^(\\s|.,!?…。，、।۔،)]+";

bool one_of(std::string_view pre, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    if (pre == name) return true;
  }
  return false;
}

}  // namespace

std::vector<Span> pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text) {
  std::vector<Span> words;
  if (text.empty()) return words;
  words.emplace_back(0, text.size());
  std::vector<Span> next;
  std::vector<Span> matches;
  for (const PreTokenizerStep& step : steps) {
    next.clear();
    for (const Span& span : words) split_span(step, text, span, matches, next);
    words.swap(next);
  }
  std::erase_if(words, [](const Span& s) { return s.second <= s.first; });
  return words;
}

std::shared_ptr<const Regex> gpt2_regex() {
  static const auto regex = std::make_shared<const Regex>(kGpt2, false, "GPT-2 pre-tokenizer");
  return regex;
}

GgufPreTokenizer gguf_pre_tokenizer(std::string_view pre, std::string_view source) {
  GgufPreTokenizer out;
  if (pre == "default") {
    out.steps = isolated({"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, source);
  } else if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                          "midm-2.0", "lfm2"})) {
    out.steps = isolated({kLlama3}, source);
    out.ignore_merges = true;
    out.add_bos = true;
  } else if (one_of(pre, {"dbrx", "smaug-bpe", "chatglm-bpe"})) {
    out.steps = isolated({kLlama3}, source);
  } else if (pre == "deepseek-llm") {
    out.steps = isolated({"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
                          "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"},
                         source);
  } else if (pre == "deepseek-coder") {
    out.steps =
        isolated({"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}, source);
  } else if (pre == "deepseek-v3") {
    out.steps = isolated({"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", kDeepseek3Words}, source);
  } else if (pre == "falcon") {
    out.steps = isolated({"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}, source);
  } else if (one_of(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                          "minerva-7b"})) {
    out.steps = isolated({"\\p{N}", kGpt2}, source);
  } else if (one_of(pre, {"gpt-2", "mpt", "phi-2", "olmo", "jais", "roberta-bpe", "gigachat",
                          "jina-es", "jina-de", "trillion"})) {
    out.steps = isolated({kGpt2}, source);
  } else if (one_of(pre, {"qwen2", "qwen2.5", "qwen-2.5", "deepseek-r1-qwen", "stablelm2"})) {
    out.steps = isolated({kQwen2}, source);
  } else if (one_of(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    out.steps = isolated({kBloom}, source);
  } else if (pre == "viking") {
    out.steps = isolated({kBloom, "\\p{N}"}, source);
  } else {
    throw UnsupportedError(fmt::format(
        "{}: pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported", source, pre));
  }
  return out;
}

}  // namespace slm
