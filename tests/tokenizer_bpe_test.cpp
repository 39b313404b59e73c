// Byte-level BPE from GGUF (tokenizer.ggml.model = gpt2): llama.cpp's test vectors, one test per
// vocabulary, plus the pre-tokenizer and error paths.
#include <gtest/gtest.h>

#include <string>

#include "slm/error.h"
#include "slm/tokenizer.h"
#include "src/format/gguf.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/gguf_tokenizer.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "tests/test_data.h"
#include "tests/tokenizer_vectors.h"

namespace slm {
namespace {

using test::Ids;

void check_gguf_vectors(const std::string& name) {
  const auto path = test::data_path("tokenizer/llamacpp/" + name);
  SLM_REQUIRE_DATA(path);
  test::expect_vectors(load_tokenizer(GgufFile::open(path.string())), path);
}

TEST(TokenizerBpeGguf, Gpt2Vectors) { check_gguf_vectors("ggml-vocab-gpt-2.gguf"); }
TEST(TokenizerBpeGguf, DeepseekCoderVectors) { check_gguf_vectors("ggml-vocab-deepseek-coder.gguf"); }
TEST(TokenizerBpeGguf, DeepseekLlmVectors) { check_gguf_vectors("ggml-vocab-deepseek-llm.gguf"); }
TEST(TokenizerBpeGguf, FalconVectors) { check_gguf_vectors("ggml-vocab-falcon.gguf"); }
TEST(TokenizerBpeGguf, MptVectors) { check_gguf_vectors("ggml-vocab-mpt.gguf"); }
TEST(TokenizerBpeGguf, RefactVectors) { check_gguf_vectors("ggml-vocab-refact.gguf"); }
TEST(TokenizerBpeGguf, StarcoderVectors) { check_gguf_vectors("ggml-vocab-starcoder.gguf"); }

TEST(TokenizerBpeGguf, BertWordPieceVectors) {
  // BERT normalizes (lowercase, accents stripped), so only the ids are checked, not the
  // round trip.
  const auto path = test::data_path("tokenizer/llamacpp/ggml-vocab-bert-bge.gguf");
  SLM_REQUIRE_DATA(path);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  test::expect_vectors(t, path, /*round_trip=*/false);
  // Each piece is a word or punctuation mark joined by a space, as llama.cpp decodes (Hugging
  // Face's WordPiece decoder would also "clean up" the space before punctuation).
  EXPECT_EQ(t.decode(t.encode("Hello, World!", false)), "hello , world !");
  EXPECT_EQ(t.encode("Führer", false), (Ids{11865, 17875}));
  EXPECT_EQ(t.bos_id(), 101);
}

TEST(TokenizerBpeGguf, GptNeoxWithoutPreUsesTheDefaultSplit) {
  // No tokenizer.ggml.pre: llama.cpp's "default" regexes; the text must still round-trip.
  const auto path = test::data_path("tokenizer/llamacpp/ggml-vocab-gpt-neox.gguf");
  SLM_REQUIRE_DATA(path);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  for (const std::string text : {"Hello world", " 3.14 x\n\n  y", "\xF0\x9F\xA6\x99 ünï"}) {
    EXPECT_EQ(t.decode(t.encode(text, false)), text);
  }
  EXPECT_EQ(t.encode("Hello", false).size(), 1u);
}

TEST(TokenizerBpe, UnknownPreTokenizerIsUnsupported) {
  try {
    gguf_pre_tokenizer("no-such-pre", "x.gguf");
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos) << e.what();
  }
}

TEST(TokenizerBpe, ByteLevelAlphabet) {
  EXPECT_EQ(byte_level_chars()[' '], "\xC4\xA0");    // Ġ
  EXPECT_EQ(byte_level_chars()['\n'], "\xC4\x8A");   // Ċ
  EXPECT_EQ(byte_level_chars()['a'], "a");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string mapped;
  append_byte_level(all, mapped);
  EXPECT_EQ(byte_level_decode(mapped), all);
}

TEST(TokenizerBpe, SplitBehaviors) {
  auto split = [](SplitBehavior behavior, bool invert) {
    std::vector<PreTokenizerStep> steps{
        PreTokenizerStep::split(std::make_shared<const Regex>("-", true, "test"), behavior, invert)};
    const std::string text = "a-b--c";
    std::vector<std::string> words;
    for (const auto& [b, e] : pre_tokenize(steps, text)) words.push_back(text.substr(b, e - b));
    return words;
  };
  using W = std::vector<std::string>;
  EXPECT_EQ(split(SplitBehavior::kIsolated, false), (W{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(split(SplitBehavior::kRemoved, false), (W{"a", "b", "c"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithPrevious, false), (W{"a-", "b-", "-", "c"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithNext, false), (W{"a", "-b", "-", "-c"}));
  EXPECT_EQ(split(SplitBehavior::kContiguous, false), (W{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(split(SplitBehavior::kRemoved, true), (W{"-", "-", "-"}));
}

}  // namespace
}  // namespace slm
