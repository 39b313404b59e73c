// Pre-tokenizers, normalizers and decoders of tokenizer.json and the GGUF `pre` regexes, on
// strings whose split is derived by hand; and decode(encode(x)) == x over the shared corpus.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <string>
#include <vector>

#include "slm/error.h"
#include "slm/tokenizer.h"
#include "src/tokenizer/normalizer.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using Words = std::vector<std::string>;

Words words_of(const std::vector<PreTokenizerStep>& steps, std::string text, bool at_start = true) {
  Words words;
  for (const auto& [b, e] : pre_tokenize(steps, text, at_start)) words.push_back(text.substr(b, e - b));
  return words;
}

Words gguf_split(const char* pre, const std::string& text) {
  return words_of(gguf_pre_tokenizer(pre, "test").steps, text);
}

TEST(TokenizerPipeline, GgufPreRegexes) {
  // Tekken: upper-case run then lower-case run; digits one by one; a word may start with one
  // non-letter, as " a" and "/b".
  EXPECT_EQ(gguf_split("tekken", "HelloWorld 123 a/b"),
            (Words{"Hello", "World", " ", "1", "2", "3", " a", "/b"}));
  EXPECT_EQ(gguf_split("tekken", "a!/\n"), (Words{"a", "!/\n"}));
  EXPECT_EQ(gguf_split("tekken", "ABCdef"), (Words{"ABCdef"}));
  // GPT-4o: contractions stay on the word; digits in threes; "/" follows punctuation.
  EXPECT_EQ(gguf_split("gpt-4o", "He's 12345 ok?/\n"),
            (Words{"He's", " ", "123", "45", " ok", "?/\n"}));
  EXPECT_EQ(gguf_split("llama4", "CamelCase"), (Words{"Camel", "Case"}));
  // Kimi K2: Han runs are words of their own, never glued to a leading space or letters.
  EXPECT_EQ(gguf_split("kimi-k2", "ab中文 x"), (Words{"ab", "中文", " x"}));
  // Chameleon: digits and punctuation isolated, then GPT-2.
  EXPECT_EQ(gguf_split("chameleon", "a1,b"), (Words{"a", "1", ",", "b"}));
  // Bailing: "\s*[\r\n]" (one final newline, the rest through \s*); digits one by one.
  EXPECT_EQ(gguf_split("bailingmoe", "x\n\ny12"), (Words{"x", "\n\n", "y", "1", "2"}));
  // Seed-Coder: punctuation does not swallow newlines.
  EXPECT_EQ(gguf_split("seed-coder", "a;\nb"), (Words{"a", ";", "\n", "b"}));
  // Qwen 3.5: a combining mark continues the word ("e" + U+0301), Qwen 2 splits it off.
  EXPECT_EQ(gguf_split("qwen35", " e\xCC\x81!"), (Words{" e\xCC\x81", "!"}));
  EXPECT_EQ(gguf_split("qwen2", " e\xCC\x81!"), (Words{" e", "\xCC\x81!"}));
  for (const char* pre : {"glm4", "solar-open", "joyai-llm", "jina-v5-nano", "modern-bert",
                          "f2llmv2", "kanana2", "talkie", "hunyuan", "hunyuan-dense", "grok-2", "megrez", "exaone4",
                          "jina-v2-code", "minimax-m2", "llada-moe", "kormo"}) {
    EXPECT_NO_THROW(gguf_pre_tokenizer(pre, "test")) << pre;
  }
  for (const char* pre : {"superbpe", "afmoe"}) {
    EXPECT_THROW(gguf_pre_tokenizer(pre, "test"), UnsupportedError) << pre;
  }
}

PreTokenizerStep metaspace(PrependScheme scheme) {
  PreTokenizerStep step;
  step.replace_space = "\xE2\x96\x81";
  step.prefix = step.replace_space;
  step.prepend = scheme;
  return step;
}

TEST(TokenizerPipeline, MetaspaceAndPrefixSpace) {
  const std::string m = "\xE2\x96\x81";
  const auto split = PreTokenizerStep::split(std::make_shared<const Regex>(m, true, "t"),
                                             SplitBehavior::kMergedWithNext);
  EXPECT_EQ(words_of({metaspace(PrependScheme::kAlways), split}, "a b"), (Words{m + "a", m + "b"}));
  EXPECT_EQ(words_of({metaspace(PrependScheme::kAlways)}, " a"), (Words{m + "a"}));
  // Hugging Face's own example: each run of spaces gives one word per extra space.
  EXPECT_EQ(words_of({metaspace(PrependScheme::kAlways), split}, "Hey   friend!"),
            (Words{m + "Hey", m, m, m + "friend!"}));
  // "first" looks at the offset in the text: a word after removed whitespace is not first.
  const auto ws = PreTokenizerStep::split(std::make_shared<const Regex>("\\s+", false, "t"),
                                          SplitBehavior::kRemoved);
  EXPECT_EQ(words_of({ws, metaspace(PrependScheme::kFirst)}, " Hey you"), (Words{"Hey", "you"}));
  // "first": only text at the start of the whole input gets the prefix.
  EXPECT_EQ(words_of({metaspace(PrependScheme::kFirst)}, "a", true), (Words{m + "a"}));
  EXPECT_EQ(words_of({metaspace(PrependScheme::kFirst)}, "a", false), (Words{"a"}));
  EXPECT_EQ(words_of({metaspace(PrependScheme::kNever)}, "a b"), (Words{"a" + m + "b"}));
  // ByteLevel add_prefix_space: a word without a leading space gets one, before the split.
  PreTokenizerStep prefix;
  prefix.prefix = " ";
  prefix.prepend = PrependScheme::kAlways;
  EXPECT_EQ(words_of({prefix, PreTokenizerStep::split(gpt2_regex())}, "hi there"),
            (Words{" hi", " there"}));
  EXPECT_EQ(words_of({prefix}, " hi"), (Words{" hi"}));
}

TEST(TokenizerPipeline, BertSplitAndNormalizers) {
  EXPECT_EQ(words_of(bert_pre_tokenizer("t"), " Hello,  world!! "),
            (Words{"Hello", ",", "world", "!", "!"}));
  using Kind = NormalizerStep::Kind;
  const auto bert = NormalizerStep::of(
      Kind::kBert, NormalizerStep::kCleanText | NormalizerStep::kChineseChars |
                       NormalizerStep::kStripAccentsFlag | NormalizerStep::kLowercaseFlag);
  EXPECT_EQ(normalize({bert}, "Führer\tÉTÉ\x01中x"), "fuhrer ete \xE4\xB8\xAD x");
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kLowercase)}, "ÀB\xFF"), "àb\xFF");  // bad byte kept
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kNfd), NormalizerStep::of(Kind::kStripAccents)}, "é"),
            "e");
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kNfkd)}, "\xEF\xAC\x81"), "fi");  // ligature
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kStrip, NormalizerStep::kLeft | NormalizerStep::kRight)},
                      " \t a b \n"),
            "a b");
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kStrip, NormalizerStep::kRight)}, " a "), " a");
}

// A small tokenizer.json using the Hugging Face components handled above.
std::string write_json(const std::string& name, const std::string& text) {
  const auto path = test::temp_dir() / name;
  std::ofstream(path) << text;
  return path.string();
}

TEST(TokenizerPipeline, UnicodeFormsAcrossAsciiBoundaries) {
  // Only non-ASCII runs (with the character before them) go through utf8proc: a combining mark
  // still composes with the ASCII letter before it, and ASCII around the runs is kept.
  using Kind = NormalizerStep::Kind;
  const auto nfc = NormalizerStep::of(Kind::kNfc);
  EXPECT_EQ(normalize({nfc}, "cafe\u0301 ok"), "caf\u00e9 ok");
  EXPECT_EQ(normalize({nfc}, "\u0301a"), "\u0301a");              // nothing before the mark
  EXPECT_EQ(normalize({nfc}, "x\u1100\u1161y"), "x\uac00y");        // Hangul L + V
  EXPECT_EQ(normalize({nfc}, "a\xFF\u0301b"), "a\xFF\u0301b");     // invalid run kept whole
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kNfd)}, "\u00e9t\u00e9"), "e\u0301te\u0301");
  EXPECT_EQ(normalize({NormalizerStep::of(Kind::kNfkc)}, "a\uFB01b"), "afib");
}

TEST(TokenizerPipeline, HfWordPieceJson) {
  const std::string json = R"({
    "added_tokens": [{"id": 0, "content": "[UNK]", "special": true},
                     {"id": 1, "content": "[CLS]", "special": true}],
    "normalizer": {"type": "BertNormalizer", "lowercase": true, "strip_accents": null,
                   "clean_text": true, "handle_chinese_chars": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 10,
              "vocab": {"[UNK]": 0, "[CLS]": 1, "un": 2, "##aff": 3, "##able": 4, "!": 5,
                        "hello": 6, "##s": 7}}})";
  const Tokenizer t = Tokenizer::from_file(write_json("wp_tokenizer.json", json));
  EXPECT_EQ(t.encode("Unaffable hellos!", false), (std::vector<TokenId>{2, 3, 4, 6, 7, 5}));
  // Not coverable, and too long: one [UNK] each.
  EXPECT_EQ(t.encode("unx hellooooooo", false), (std::vector<TokenId>{0, 0}));
  EXPECT_EQ(t.decode(std::vector<TokenId>{2, 3, 4, 6, 7, 5}), "unaffable hellos !");
}

TEST(TokenizerPipeline, HfMetaspaceJson) {
  const std::string json = R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                     {"id": 1, "content": "<s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false, "merges": [["▁", "a"], ["▁a", "b"]],
              "vocab": {"<unk>": 0, "<s>": 1, "▁": 2, "a": 3, "b": 4, "▁a": 5, "▁ab": 6}}})";
  const Tokenizer t = Tokenizer::from_file(write_json("ms_tokenizer.json", json));
  EXPECT_EQ(t.encode("ab ab", false), (std::vector<TokenId>{6, 6}));
  // After a special token the text does not start the input: no prefix ("first").
  EXPECT_EQ(t.encode("<s>ab", false, true), (std::vector<TokenId>{1, 3, 4}));
  EXPECT_EQ(t.decode(t.encode("ab ab", false)), "ab ab");
}

TEST(TokenizerPipeline, HfWhitespaceAndPunctuationJson) {
  // Character-level BPE without merges: every character is a token, so the ids show the
  // words the pre-tokenizers made only through what was removed.
  const std::string json = R"({
    "added_tokens": [],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "StripAccents"},
                   {"type": "Lowercase"}, {"type": "Strip", "strip_left": true, "strip_right": true}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                      {"type": "Punctuation", "behavior": "Isolated"}]},
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "merges": [], "vocab": {"a": 0, "b": 1, "!": 2, "e": 3}}})";
  const Tokenizer t = Tokenizer::from_file(write_json("ws_tokenizer.json", json));
  EXPECT_EQ(t.encode("  A\tb!  \xC3\x89 ", false), (std::vector<TokenId>{0, 1, 2, 3}));

  const std::string whitespace = R"({"added_tokens": [], "pre_tokenizer": {"type": "Whitespace"},
    "model": {"type": "BPE", "merges": [], "vocab": {"a": 0, "!": 1}}})";
  EXPECT_EQ(Tokenizer::from_file(write_json("w_tokenizer.json", whitespace)).encode("a !a", false),
            (std::vector<TokenId>{0, 1, 0}));

  const std::string replace = R"({"added_tokens": [],
    "decoder": {"type": "Replace", "pattern": {"String": "_"}, "content": " "},
    "model": {"type": "BPE", "merges": [], "vocab": {"a": 0}}})";
  EXPECT_THROW(Tokenizer::from_file(write_json("r_tokenizer.json", replace)), UnsupportedError);
}

TEST(TokenizerPipeline, UnknownComponentsAreNamed) {
  const std::string json = R"({"added_tokens": [], "pre_tokenizer": {"type": "UnicodeScripts"},
    "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
  try {
    Tokenizer::from_file(write_json("bad_tokenizer.json", json));
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("UnicodeScripts"), std::string::npos) << e.what();
  }
}

// decode(encode(x)) == x over corpus.json wherever Hugging Face's own decode gives x back.
TEST(TokenizerPipeline, CorpusRoundTrip) {
  const auto root = test::data_path("tokenizer/hf");
  SLM_REQUIRE_DATA(root / "llama3" / "expected.jsonl");
  for (const char* name : {"llama2", "llama3", "qwen3", "gemma3", "deepseek_v3"}) {
    const auto dir = root / name;
    if (!std::filesystem::exists(dir / "expected.jsonl")) continue;
    const Tokenizer t = Tokenizer::from_file((dir / "tokenizer.json").string());
    simdjson::dom::parser parser;
    const simdjson::padded_string lines =
        simdjson::padded_string::load((dir / "expected.jsonl").string());
    int checked = 0;
    for (auto doc : parser.parse_many(lines)) {
      const auto row = doc.get_object().value();
      const std::string text(row["text"].get_string().value());
      if (std::string_view(row["decoded"].get_string().value()) != text) continue;
      ++checked;
      EXPECT_EQ(t.decode(t.encode(text, false, true), true), text) << name;
    }
    EXPECT_GT(checked, 100) << name;
  }
}

}  // namespace
}  // namespace slm
