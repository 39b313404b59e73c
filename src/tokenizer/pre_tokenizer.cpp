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
    steps.push_back(
        PreTokenizerStep::split(std::make_shared<const Regex>(pattern, false, source)));
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
// Qwen 3.5: Qwen 2's split with combining marks (\p{M}) counted as letters.
constexpr const char* kQwen35 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Characters that Unicode normalization would change are written \x{...} so that no editor
// or tool can silently replace them.
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
constexpr const char* kDeepseek3Words =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Tekken (Mistral Nemo) and o200k (GPT-4o, Llama 4): words are an optional non-letter, then
// upper-case-ish letters followed by lower-case-ish ones, so "HelloWorld" splits in two.
constexpr const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#define SLM_CONTRACTION "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
constexpr const char* kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" SLM_CONTRACTION "?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" SLM_CONTRACTION "?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Kimi K2's tiktoken pattern writes "[classes&&[^\\p{Han}]]" (class intersection), which PCRE2
// lacks; a negative look-ahead before each letter says the same.
#define SLM_KIMI_UPPER "(?:(?!\\p{Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])"
#define SLM_KIMI_LOWER "(?:(?!\\p{Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])"
constexpr const char* kKimiK2 =
    "\\p{Han}+|"
    "[^\\r\\n\\p{L}\\p{N}]?" SLM_KIMI_UPPER "*" SLM_KIMI_LOWER "+" SLM_CONTRACTION "?|"
    "[^\\r\\n\\p{L}\\p{N}]?" SLM_KIMI_UPPER "+" SLM_KIMI_LOWER "*" SLM_CONTRACTION "?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#undef SLM_KIMI_UPPER
#undef SLM_KIMI_LOWER
// Bailing MoE writes possessive quantifiers ("?+", "++"); here they cannot change a match (the
// classes that follow exclude what they would give back), so the greedy forms are used.
constexpr const char* kBailing =
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
constexpr const char* kSeedCoder =
    SLM_CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#undef SLM_CONTRACTION
constexpr const char* kBloom = " ?[^(\\s|.,!?…。，、।۔،)]+";

bool one_of(std::string_view pre, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    if (pre == name) return true;
  }
  return false;
}

}  // namespace

namespace {

// Rewrites every word of `text` (Metaspace / ByteLevel prefix); the gaps between words, which
// no later step can see, are dropped.
void rewrite(const PreTokenizerStep& step, std::string& text, std::vector<Span>& words,
             bool at_input_start) {
  std::string out;
  out.reserve(text.size() + text.size() / 4 + step.prefix.size() * words.size());
  for (Span& word : words) {
    const size_t begin = out.size();
    const std::string_view w = std::string_view(text).substr(word.first, word.second - word.first);
    const bool wants_prefix =
        step.prepend == PrependScheme::kAlways ||
        (step.prepend == PrependScheme::kFirst && at_input_start && word.first == 0);
    if (wants_prefix && !step.prefix.empty()) {
      // Hugging Face checks the word after the space replacement.
      const bool has_prefix =
          step.replace_space.empty()
              ? w.starts_with(step.prefix)
              : (w.starts_with(step.prefix) ||
                 (w.starts_with(' ') && std::string_view(step.replace_space).starts_with(step.prefix)));
      if (!has_prefix) out += step.prefix;
    }
    for (char c : w) {
      if (c == ' ' && !step.replace_space.empty()) {
        out += step.replace_space;
      } else {
        out += c;
      }
    }
    word = Span(begin, out.size());
  }
  text.swap(out);
}

}  // namespace

std::vector<Span> pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string& text,
                               bool at_input_start) {
  std::vector<Span> words;
  if (text.empty()) return words;
  words.emplace_back(0, text.size());
  std::vector<Span> next;
  std::vector<Span> matches;
  for (const PreTokenizerStep& step : steps) {
    if (step.rewrites()) {
      std::erase_if(words, [](const Span& s) { return s.second <= s.first; });
      rewrite(step, text, words, at_input_start);
      continue;
    }
    next.clear();
    for (const Span& span : words) split_span(step, text, span, matches, next);
    words.swap(next);
  }
  std::erase_if(words, [](const Span& s) { return s.second <= s.first; });
  return words;
}

std::vector<Span> pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text) {
  std::string copy(text);
  return pre_tokenize(steps, copy, true);
}

std::vector<PreTokenizerStep> bert_pre_tokenizer(std::string_view source) {
  std::vector<PreTokenizerStep> steps(2);
  steps[0].regex = std::make_shared<const Regex>("\\s+", false, source);
  steps[0].behavior = SplitBehavior::kRemoved;
  steps[1].regex = std::make_shared<const Regex>(kBertPunctuation, false, source);
  steps[1].behavior = SplitBehavior::kIsolated;
  return steps;
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
                          "midm-2.0", "lfm2", "jina-v5-nano"})) {
    out.steps = isolated({kLlama3}, source);
    out.ignore_merges = true;
    out.add_bos = true;
  } else if (pre == "tekken") {
    out.steps = isolated({kTekken}, source);
    out.ignore_merges = true;
    out.add_bos = true;
  } else if (one_of(pre, {"gpt-4o", "llama4", "minimax-m2", "kanana2", "talkie"})) {
    out.steps = isolated({kGpt4o}, source);
  } else if (pre == "kimi-k2") {
    out.steps = isolated({kKimiK2}, source);
  } else if (pre == "chameleon") {
    out.steps = isolated({"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                          "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", kGpt2},
                         source);
    out.add_bos = true;
  } else if (one_of(pre, {"bailingmoe", "bailingmoe2", "llada-moe"})) {
    out.steps = isolated({kBailing}, source);
  } else if (pre == "seed-coder") {
    out.steps = isolated({kSeedCoder}, source);
  } else if (one_of(pre, {"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    out.steps = isolated({kLlama3}, source);
  } else if (pre == "deepseek-llm") {
    out.steps = isolated({"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
                          "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"},
                         source);
  } else if (pre == "deepseek-coder") {
    out.steps =
        isolated({"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}, source);
  } else if (one_of(pre, {"deepseek-v3", "hunyuan-dense", "joyai-llm"})) {
    out.steps = isolated({"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", kDeepseek3Words}, source);
  } else if (pre == "falcon") {
    out.steps = isolated({"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}, source);
  } else if (one_of(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                          "minerva-7b"})) {
    out.steps = isolated({"\\p{N}", kGpt2}, source);
  } else if (one_of(pre, {"gpt-2", "mpt", "phi-2", "olmo", "jais", "roberta-bpe", "gigachat",
                          "jina-es", "jina-de", "trillion", "jina-v1-en", "jina-v2-es",
                          "jina-v2-de", "jina-v2-code", "a.x-4.0", "mellum", "exaone4",
                          "granite-docling", "modern-bert"})) {
    out.steps = isolated({kGpt2}, source);
  } else if (one_of(pre, {"qwen2", "qwen2.5", "qwen-2.5", "deepseek-r1-qwen", "stablelm2", "kormo",
                          "megrez", "hunyuan", "grok-2", "solar-open", "f2llmv2"})) {
    out.steps = isolated({kQwen2}, source);
  } else if (pre == "qwen35") {
    out.steps = isolated({kQwen35}, source);
  } else if (one_of(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    out.steps = isolated({kBloom}, source);
  } else if (pre == "viking") {
    out.steps = isolated({kBloom, "\\p{N}"}, source);
  } else {
    // Also llama.cpp's "superbpe" (an empty-match look-ahead split) and "afmoe" (a hand-written
    // digit grouper), which are not plain regex splits, and names whose regex is not checked
    // here yet (gemma4, sarvam-moe, youtu, jais-2, exaone-moe, tiny_aya, laguna, mellum2, ...).
    throw UnsupportedError(fmt::format(
        "{}: pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported", source, pre));
  }
  return out;
}

}  // namespace slm
