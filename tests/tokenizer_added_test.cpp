// Added tokens (tokenizer.json `added_tokens`) matched in the text with Hugging Face's rules,
// and special tokens in GGUF vocabularies with llama.cpp's. Each tokenizer here is a tiny
// hand-written tokenizer.json: a BPE model without merges whose vocabulary holds single
// characters, so text that no added token takes becomes one id per character, and the expected
// ids follow from the rule stated with each case.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "slm/tokenizer.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using Ids = std::vector<TokenId>;

// Character ids of every tokenizer below.
constexpr TokenId kUnk = 0, kA = 1, kB = 2, kC = 3, kSpace = 4, kX = 5, kY = 6, kUnder = 7;

std::string added(int id, const std::string& content, bool special, bool lstrip, bool rstrip,
                  bool single_word, bool normalized) {
  auto b = [](bool v) { return v ? "true" : "false"; };
  return "{\"id\": " + std::to_string(id) + ", \"content\": \"" + content +
         "\", \"special\": " + b(special) + ", \"lstrip\": " + b(lstrip) +
         ", \"rstrip\": " + b(rstrip) + ", \"single_word\": " + b(single_word) +
         ", \"normalized\": " + b(normalized) + "}";
}

constexpr const char* kCharModel =
    "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"a\": 1, "
    "\"b\": 2, \"c\": 3, \" \": 4, \"x\": 5, \"y\": 6, \"_\": 7}, \"merges\": []}";

Tokenizer load(const std::string& name, const std::string& added_tokens,
               const std::string& normalizer = "null", const std::string& model = kCharModel) {
  const auto path = test::temp_dir() / (name + ".json");
  std::ofstream(path) << "{\"added_tokens\": [" << added_tokens
                      << "], \"normalizer\": " << normalizer
                      << ", \"pre_tokenizer\": null, \"decoder\": null, \"post_processor\": null,"
                         " \"model\": "
                      << model << "}";
  return Tokenizer::from_file(path.string());
}

TEST(TokenizerAdded, LeftmostLongest) {
  // Hugging Face matches added tokens leftmost first, the longest of those starting there, and
  // resumes after the match: "ab" starts before "bcy" and wins although it is shorter.
  const Tokenizer t =
      load("leftmost", added(10, "ab", false, false, false, false, false) + ", " +
                           added(11, "abx", false, false, false, false, false) + ", " +
                           added(12, "bcy", false, false, false, false, false));
  EXPECT_EQ(t.encode("abcy", false, true), (Ids{10, kC, kY}));
  EXPECT_EQ(t.encode("abxc", false, true), (Ids{11, kC}));  // longest at the same start
  EXPECT_EQ(t.encode("cbcy", false, true), (Ids{kC, 12}));
  EXPECT_EQ(t.encode("ababab", false, true), (Ids{10, 10, 10}));
}

TEST(TokenizerAdded, StripWhitespace) {
  // lstrip: the token also takes the whitespace run before it (not what an earlier token
  // already took); rstrip: the run after it. The whitespace is gone from the text.
  const Tokenizer t = load("strip", added(10, "<l>", true, true, false, false, false) + ", " +
                                        added(11, "<r>", true, false, true, false, false) + ", " +
                                        added(12, "<lr>", true, true, true, false, false));
  EXPECT_EQ(t.encode("a  <l>b", false, true), (Ids{kA, 10, kB}));
  EXPECT_EQ(t.encode("a  <l> b", false, true), (Ids{kA, 10, kSpace, kB}));
  EXPECT_EQ(t.encode("a <r> \n b", false, true), (Ids{kA, kSpace, 11, kB}));
  EXPECT_EQ(t.encode("a \t<lr>  b", false, true), (Ids{kA, 12, kB}));
  // The rstrip of <r> took the spaces, so <l> has none left to take.
  EXPECT_EQ(t.encode("<r>  <l>", false, true), (Ids{11, 10}));
}

TEST(TokenizerAdded, SingleWord) {
  // single_word: matched only when neither neighbour character is a word character (\w:
  // letters, digits, marks, '_'). A rejected match is skipped whole.
  const Tokenizer t = load("single", added(10, "xy", false, false, false, true, false));
  EXPECT_EQ(t.encode("a xy b", false, true), (Ids{kA, kSpace, 10, kSpace, kB}));
  EXPECT_EQ(t.encode("xy", false, true), (Ids{10}));
  EXPECT_EQ(t.encode("axy", false, true), (Ids{kA, kX, kY}));
  EXPECT_EQ(t.encode("xy_", false, true), (Ids{kX, kY, kUnder}));
  EXPECT_EQ(t.encode("\xC3\xA9xy", false, true), (Ids{kUnk, kX, kY}));  // é is a letter
}

TEST(TokenizerAdded, Normalized) {
  // normalized: the token's text goes through the normalizer (here ' ' -> '_') and is matched
  // in the normalized text, after the tokens without it were cut out of the raw text.
  const std::string replace =
      "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"_\"}";
  const Tokenizer t = load("normalized",
                           added(10, "x y", false, false, false, false, true) + ", " +
                               added(11, "a b", false, false, false, false, false) + ", " +
                               added(12, "c_c", false, false, false, false, false),
                           replace);
  EXPECT_EQ(t.encode("x y", false, true), (Ids{10}));
  EXPECT_EQ(t.encode("x_y", false, true), (Ids{10}));  // same normalized text
  EXPECT_EQ(t.encode("a b", false, true), (Ids{11}));  // raw match before normalization
  EXPECT_EQ(t.encode("a_b", false, true), (Ids{kA, kUnder, kB}));
  EXPECT_EQ(t.encode("c c", false, true), (Ids{kC, kUnder, kC}));  // raw text has no "c_c"
  EXPECT_EQ(t.encode("c_c", false, true), (Ids{12}));
}

TEST(TokenizerAdded, SpecialOnlyWhenParsed) {
  const Tokenizer t = load("special", added(10, "<s>", true, false, false, false, false) + ", " +
                                          added(11, "ab", false, false, false, false, false));
  EXPECT_EQ(t.encode("<s>ab", false, true), (Ids{10, 11}));
  EXPECT_EQ(t.encode("<s>ab", false, false), (Ids{kUnk, kUnk, kUnk, 11}));
}

TEST(TokenizerAdded, LlamaCppLongestFirst) {
  // GGUF vocabularies keep llama.cpp's tokenizer_st_partition: the longest special token is cut
  // out first wherever it occurs, then the next ones in what is left, so "bcy" wins over "ab".
  Vocab v;
  v.kind = VocabKind::kBpe;
  v.add_space_prefix = false;
  v.tokens = {"<unk>", "a", "b", "c", " ", "x", "y", "_", "ab", "bcy"};
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types[0] = TokenType::kUnknown;
  v.types[8] = TokenType::kUserDefined;
  v.types[9] = TokenType::kControl;
  v.scores.assign(v.tokens.size(), 0.0f);
  v.unk = 0;
  const Tokenizer t = make_tokenizer(std::move(v));
  EXPECT_EQ(t.encode("abcy", false, true), (Ids{kA, 9}));
  EXPECT_EQ(t.encode("abcy", false, false), (Ids{8, kC, kY}));  // control tokens not parsed
  EXPECT_EQ(t.encode("abab", false, true), (Ids{8, 8}));
}

TEST(TokenizerAdded, LlamaCppStripAttributes) {
  // llama.cpp's LSTRIP / RSTRIP token attributes: the token drops the ASCII whitespace beside
  // it, but only within the text fragment it was cut from (not across an earlier token).
  Vocab v;
  v.kind = VocabKind::kBpe;
  v.add_space_prefix = false;
  v.tokens = {"<unk>", "a", "b", "c", " ", "x", "y", "_", "<l>", "<r>", "<long>"};
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types[0] = TokenType::kUnknown;
  for (size_t id = 8; id < v.tokens.size(); ++id) v.types[id] = TokenType::kControl;
  v.scores.assign(v.tokens.size(), 0.0f);
  v.unk = 0;
  v.lstrip_tokens = {8};
  v.rstrip_tokens = {9};
  const Tokenizer t = make_tokenizer(std::move(v));
  EXPECT_EQ(t.encode("a \n <l> b", false, true), (Ids{kA, 8, kSpace, kB}));
  EXPECT_EQ(t.encode("a <r> \t b", false, true), (Ids{kA, kSpace, 9, kB}));
  EXPECT_EQ(t.encode("a <r> ", false, true), (Ids{kA, kSpace, 9}));
  // <long> is cut first; the spaces between it and <l> are then their own fragment.
  EXPECT_EQ(t.encode("<long>  <l>", false, true), (Ids{10, 8}));
  EXPECT_EQ(t.encode("<r>  <l>", false, true), (Ids{9, 8}));
  EXPECT_EQ(t.encode("a <l>", false, false), (Ids{kA, kSpace, kUnk, kUnk, kUnk}));
}

TEST(TokenizerAdded, Phi3GgufSpecialTokensTakeTheWhitespaceAfterThem) {
  // llama.cpp gives a model named Phi-3 (general.name) RSTRIP on its special tokens, except
  // <unk>, <s> and <|endoftext|>: "<|user|>\n" and "<|end|>\n" drop the newline.
  const std::string phi3 = test::data_path("tokenizer/llamacpp/ggml-vocab-phi-3.gguf");
  SLM_REQUIRE_DATA(phi3);
  const Tokenizer t = Tokenizer::from_file(phi3);
  const TokenId user = t.encode("<|user|>", false, true).at(0);
  const TokenId end = t.encode("<|end|>", false, true).at(0);
  const TokenId eot = t.encode("<|endoftext|>", false, true).at(0);
  Ids expected = {user};
  for (TokenId id : t.encode("Hi", false, false)) expected.push_back(id);
  expected.push_back(end);
  EXPECT_EQ(t.encode("<|user|>\n Hi<|end|>\n", false, true), expected);
  // <|endoftext|> keeps what follows: the newline is text again.
  const Ids after_eot = t.encode("<|endoftext|>\n", false, true);
  ASSERT_GE(after_eot.size(), 2u);
  EXPECT_EQ(after_eot[0], eot);
  // Without parse_special nothing is stripped.
  EXPECT_NE(t.encode("<|end|>\n", false, false).back(), end);
}

TEST(TokenizerAdded, SpmWordCutKeepsCrossingMerges) {
  // SentencePiece-style BPE without a pre-tokenizer segments the whole text; slm cuts it before
  // each U+2581 run that follows another character, except where a token spelled with U+2581
  // after another character ("a▁") occurs over the cut. Here merges are (a ▁) then (▁ b).
  const std::string replace =
      "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}";
  const std::string model =
      "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"\u2581\": 1, "
      "\"a\": 2, \"b\": 3, \"a\u2581\": 4, \"\u2581b\": 5}, \"merges\": [\"a \u2581\", "
      "\"\u2581 b\"]}";
  const Tokenizer t = load("spm_cut", "", replace, model);
  EXPECT_EQ(t.encode("a b", false, true), (Ids{4, 3}));          // (a ▁) first: no cut
  EXPECT_EQ(t.encode("b a b", false, true), (Ids{3, 1, 4, 3}));  // b | ▁a▁b: (▁ a) is no merge
  EXPECT_EQ(t.encode("a  b", false, true), (Ids{4, 5}));
  EXPECT_EQ(t.encode("b b", false, true), (Ids{3, 5}));
}

}  // namespace
}  // namespace slm
