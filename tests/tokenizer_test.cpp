#include "slm/tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/tokenizer/gguf_tokenizer.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "tests/test_data.h"
#include "tests/tokenizer_vectors.h"

namespace slm {
namespace {

using test::ids_text;
using test::read_vocab_case;
using test::VocabCase;

using Ids = std::vector<TokenId>;

// A small SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then text tokens.
constexpr TokenId kByte0 = 3;
constexpr TokenId byte_id(int b) { return kByte0 + b; }

struct TestVocab {
  Vocab vocab;
  TokenId add(const std::string& text, float score, TokenType type = TokenType::kNormal) {
    vocab.tokens.push_back(text);
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
    return vocab.size() - 1;
  }
  TestVocab(bool with_bytes = true) {
    add("<unk>", 0, TokenType::kUnknown);
    add("<s>", 0, TokenType::kControl);
    add("</s>", 0, TokenType::kControl);
    vocab.unk = 0;
    vocab.bos = 1;
    vocab.eos = 2;
    if (with_bytes) {
      for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::kByte);
    }
  }
};

const std::string kSp = "\xE2\x96\x81";  // U+2581

struct Fixture {
  TestVocab tv;
  TokenId sp, a, b, c, ab, bc, abc, sp_a, sp_ab, aa, hi, user;
  Fixture() {
    sp = tv.add(kSp, -5);
    a = tv.add("a", -1);
    b = tv.add("b", -1);
    c = tv.add("c", -1);
    ab = tv.add("ab", -3);
    bc = tv.add("bc", -2);  // beats "ab": "abc" -> a + bc first
    abc = tv.add("abc", -4);
    sp_a = tv.add(kSp + "a", -2.5f);
    sp_ab = tv.add(kSp + "ab", -6);
    aa = tv.add("aa", -1.5f);
    hi = tv.add("h", -1);
    user = tv.add("<tool>", 0, TokenType::kUserDefined);
  }
  Tokenizer tokenizer(bool space_prefix = true) const {
    Vocab v = tv.vocab;
    v.add_space_prefix = space_prefix;
    return make_tokenizer(std::move(v));
  }
};

TEST(Tokenizer, MergesHighestScoreFirst) {
  Fixture f;
  const Tokenizer t = f.tokenizer(/*space_prefix=*/false);
  // a b c: "bc" (-2) outscores "ab" (-3); then a + bc = "abc".
  EXPECT_EQ(t.encode("abc", false), (Ids{f.abc}));
  EXPECT_EQ(t.encode("ab", false), (Ids{f.ab}));
  // With the space prefix: ▁ a b c: "▁a" (-2.5) vs "bc" (-2): bc first, then ▁ a|bc: "▁a" is
  // the only pair left ("abc" needs a and bc adjacent, which ▁a + bc is not), giving ▁a bc.
  const Tokenizer p = f.tokenizer();
  EXPECT_EQ(p.encode("abc", false), (Ids{f.sp_a, f.bc}));
  EXPECT_EQ(p.encode("ab", false), (Ids{f.sp_ab}));  // ▁a (-2.5), then ▁a + b = ▁ab
}

TEST(Tokenizer, TiesMergeLeftmostPair) {
  Fixture f;
  const Tokenizer t = f.tokenizer(false);
  EXPECT_EQ(t.encode("aaa", false), (Ids{f.aa, f.a}));
  EXPECT_EQ(t.encode("aaaaa", false), (Ids{f.aa, f.aa, f.a}));
}

TEST(Tokenizer, ByteFallbackAndUnknown) {
  Fixture f;
  const Tokenizer t = f.tokenizer(false);
  // "é" = C3 A9 is not a token: one byte token per byte.
  EXPECT_EQ(t.encode("a\xC3\xA9", false), (Ids{f.a, byte_id(0xC3), byte_id(0xA9)}));
  // Without byte tokens the bytes become <unk>.
  TestVocab nobytes(/*with_bytes=*/false);
  const TokenId a = nobytes.add("a", -1);
  nobytes.vocab.add_space_prefix = false;
  const Tokenizer u = make_tokenizer(nobytes.vocab);
  EXPECT_EQ(u.encode("a\xC3\xA9", false), (Ids{a, 0, 0}));
}

TEST(Tokenizer, BosAndEmptyText) {
  Fixture f;
  const Tokenizer t = f.tokenizer();
  EXPECT_EQ(t.encode("", true), (Ids{1}));
  EXPECT_EQ(t.encode("", false), (Ids{}));
  EXPECT_EQ(t.encode(" ", false), (Ids{f.sp, f.sp}));
  EXPECT_EQ(t.encode("a", true), (Ids{1, f.sp_a}));
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_TRUE(t.adds_bos());
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(1));
  EXPECT_FALSE(t.is_eog(-1));
}

TEST(Tokenizer, ParseSpecialOnAndOff) {
  Fixture f;
  const Tokenizer t = f.tokenizer();
  // On: "</s>" is EOS and the text after a special token gets its own space prefix.
  EXPECT_EQ(t.encode("a</s>a", false, true), (Ids{f.sp_a, 2, f.sp_a}));
  EXPECT_EQ(t.encode("<s>a", false, true), (Ids{1, f.sp_a}));
  EXPECT_EQ(t.encode("</s>", false, true), (Ids{2}));
  EXPECT_EQ(t.encode("<unk>", false, true), (Ids{0}));
  // Off: it is text ('<', '/', 's', '>' have no tokens, so bytes).
  const Ids off = t.encode("a</s>", false, false);
  EXPECT_EQ(off, (Ids{f.sp_a, byte_id('<'), byte_id('/'), byte_id('s'), byte_id('>')}));
  // User-defined tokens are matched either way (llama.cpp), with the prefix after them.
  EXPECT_EQ(t.encode("a<tool>a", false, false), (Ids{f.sp_a, f.user, f.sp_a}));
}

TEST(Tokenizer, DecodeStripsTheSpacePrefixAndSkipsControlTokens) {
  Fixture f;
  const Tokenizer t = f.tokenizer();
  for (const std::string text : {"abc", " abc", "a  b", "  ", "a\xC3\xA9 b"}) {
    EXPECT_EQ(t.decode(t.encode(text, true)), text) << text;
    EXPECT_EQ(t.decode(t.encode(text, false)), text) << text;
  }
  // Text after a special token gets its own space prefix, which decode keeps (llama.cpp and
  // Hugging Face's legacy Llama tokenizer do the same), so this one does not round-trip.
  EXPECT_EQ(t.decode(t.encode("h<tool>ha", false)), "h<tool> ha");
  EXPECT_EQ(t.decode(Ids{1, f.sp_a, 2}), "a");
  EXPECT_EQ(t.token_to_piece(f.sp_a), " a");
  EXPECT_EQ(t.token_to_piece(byte_id(0xC3)), "\xC3");
  EXPECT_EQ(t.token_to_piece(1), "");
  EXPECT_EQ(t.token_to_piece(f.user), "<tool>");
  // Without a space prefix nothing is stripped.
  const Tokenizer n = f.tokenizer(false);
  EXPECT_EQ(n.decode(Ids{f.sp_a}), " a");
}

TEST(Tokenizer, OutOfRangeIdsAreInvalidArguments) {
  Fixture f;
  const Tokenizer t = f.tokenizer();
  const TokenId n = t.vocab_size();
  EXPECT_THROW(t.token_to_piece(n), InvalidArgumentError);
  EXPECT_THROW(t.token_to_piece(-1), InvalidArgumentError);
  EXPECT_THROW(t.decode(Ids{f.a, n + 5}), InvalidArgumentError);
  try {
    t.decode(Ids{n});
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(n)), std::string::npos) << e.what();
  }
  Tokenizer::StreamDecoder stream(t);
  EXPECT_THROW(stream.push(n), InvalidArgumentError);
}

TEST(Tokenizer, StreamDecoderEmitsOnlyCompleteUtf8) {
  Fixture f;
  const Tokenizer t = f.tokenizer();
  // "a€😀" where € = E2 82 AC and 😀 = F0 9F 98 80 are all byte-fallback tokens.
  const std::string text = "a\xE2\x82\xAC\xF0\x9F\x98\x80";
  const Ids ids = t.encode(text, true);
  ASSERT_EQ(ids.size(), 1u + 1u + 3u + 4u);
  Tokenizer::StreamDecoder stream(t);
  std::vector<std::string> outputs;
  std::string all;
  for (TokenId id : ids) {
    outputs.push_back(stream.push(id));
    all += outputs.back();
  }
  all += stream.flush();
  EXPECT_EQ(all, text);
  EXPECT_EQ(outputs, (std::vector<std::string>{"", "a", "", "", "\xE2\x82\xAC", "", "", "",
                                               "\xF0\x9F\x98\x80"}));
  // A truncated sequence comes out of flush() as U+FFFD; a stray continuation byte at once.
  Tokenizer::StreamDecoder cut(t);
  EXPECT_EQ(cut.push(byte_id(0xE2)), "");
  EXPECT_EQ(cut.push(byte_id(0x82)), "");
  EXPECT_EQ(cut.flush(), "\xEF\xBF\xBD");
  Tokenizer::StreamDecoder stray(t);
  EXPECT_EQ(stray.push(byte_id(0x80)), "\xEF\xBF\xBD");
  EXPECT_EQ(stray.push(f.sp_a), " a");  // only the first piece loses its space
  EXPECT_EQ(stray.flush(), "");
}

TEST(Tokenizer, InvalidVocabulariesAreFormatErrors) {
  Fixture f;
  Vocab v = f.tv.vocab;
  v.scores.pop_back();
  EXPECT_THROW(make_tokenizer(v), FormatError);
  v = f.tv.vocab;
  v.eos = v.size();
  EXPECT_THROW(make_tokenizer(v), FormatError);
  v = f.tv.vocab;
  v.tokens[kByte0] = "<0xZZ>";
  EXPECT_THROW(make_tokenizer(v), FormatError);
}

// ---- GGUF vocabularies ----

void check_llamacpp_vectors(const std::string& name) {
  const auto path = test::data_path("tokenizer/llamacpp/" + name);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  test::expect_vectors(t, path);
}

TEST(TokenizerGguf, LlamaSpmVectors) {
  SLM_REQUIRE_DATA(test::data_path("tokenizer/llamacpp/ggml-vocab-llama-spm.gguf"));
  check_llamacpp_vectors("ggml-vocab-llama-spm.gguf");
}

TEST(TokenizerGguf, Phi3Vectors) {
  SLM_REQUIRE_DATA(test::data_path("tokenizer/llamacpp/ggml-vocab-phi-3.gguf"));
  check_llamacpp_vectors("ggml-vocab-phi-3.gguf");
}

TEST(TokenizerGguf, Phi3SpecialTokens) {
  const auto path = test::data_path("tokenizer/llamacpp/ggml-vocab-phi-3.gguf");
  SLM_REQUIRE_DATA(path);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  EXPECT_EQ(t.vocab_size(), 32064);
  EXPECT_EQ(t.eos_id(), 32000);  // <|endoftext|>
  EXPECT_TRUE(t.is_eog(32000));
  const Ids with = t.encode("<|user|>Hi<|end|>", false, true);
  ASSERT_GE(with.size(), 3u);
  EXPECT_EQ(with.front(), 32010);
  EXPECT_EQ(with.back(), 32007);
  const Ids without = t.encode("<|user|>", false, false);
  EXPECT_EQ(std::count(without.begin(), without.end(), 32010), 0);
}

TEST(TokenizerGguf, Stories260K) {
  const auto path = test::data_path("models/stories260K/stories260K.gguf");
  SLM_REQUIRE_DATA(path);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  EXPECT_EQ(t.vocab_size(), 512);
  const Ids ids = t.encode("Once upon a time", true);
  EXPECT_EQ(ids, test::read_ids(test::data_path("models/stories260K/reference/tokens.txt")));
  EXPECT_EQ(ids, (Ids{1, 403, 407, 261, 378}));
  EXPECT_EQ(t.decode(ids), "Once upon a time");
  EXPECT_TRUE(t.adds_bos());
  EXPECT_TRUE(t.is_eog(2));
  // The reference greedy continuation decodes to text, byte by byte the same when streamed.
  const Ids greedy =
      test::read_ids(test::data_path("models/stories260K/reference/stories260K.greedy.txt"));
  ASSERT_EQ(greedy.size(), 64u);
  Tokenizer::StreamDecoder stream(t);
  std::string streamed;
  for (TokenId id : ids) streamed += stream.push(id);
  for (TokenId id : greedy) streamed += stream.push(id);
  streamed += stream.flush();
  Ids all = ids;
  all.insert(all.end(), greedy.begin(), greedy.end());
  EXPECT_EQ(streamed, t.decode(all));
}

// Writes a GGUF v3 file with the given string/array metadata (enough for tokenizer tests).
class GgufWriter {
 public:
  void add_string(const std::string& key, const std::string& value) {
    key_(key);
    u32(8);
    str(value);
    ++n_;
  }
  void add_strings(const std::string& key, const std::vector<std::string>& values) {
    key_(key);
    u32(9);
    u32(8);
    u64(values.size());
    for (const auto& v : values) str(v);
    ++n_;
  }
  void add_floats(const std::string& key, const std::vector<float>& values) {
    key_(key);
    u32(9);
    u32(6);
    u64(values.size());
    for (float v : values) body_.append(reinterpret_cast<const char*>(&v), 4);
    ++n_;
  }
  void add_u32(const std::string& key, uint32_t v) {
    key_(key);
    u32(4);
    u32(v);
    ++n_;
  }
  void write(const std::filesystem::path& path) const {
    std::string head = "GGUF";
    auto put = [&](const void* p, size_t n) { head.append(static_cast<const char*>(p), n); };
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_, 8);
    std::ofstream(path, std::ios::binary) << head << body_;
  }

 private:
  void u32(uint32_t v) { body_.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { body_.append(reinterpret_cast<const char*>(&v), 8); }
  void str(const std::string& s) {
    u64(s.size());
    body_ += s;
  }
  void key_(const std::string& k) { str(k); }
  std::string body_;
  uint64_t n_ = 0;
};

TEST(TokenizerGguf, UnsupportedModelKind) {
  const auto path = test::temp_dir() / "t5.gguf";
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "t5");
  w.add_strings("tokenizer.ggml.tokens", {"a", "b"});
  w.write(path);
  try {
    load_tokenizer(GgufFile::open(path.string()));
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("t5 tokenizers are not supported yet"),
              std::string::npos)
        << e.what();
  }
}

TEST(TokenizerGguf, MissingOrInconsistentMetadata) {
  const auto dir = test::temp_dir();
  auto expect_format_error = [&](const GgufWriter& w, const std::string& name,
                                 const std::string& key) {
    const auto path = dir / name;
    w.write(path);
    try {
      load_tokenizer(GgufFile::open(path.string()));
      ADD_FAILURE() << name << ": expected FormatError";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  GgufWriter none;
  expect_format_error(none, "none.gguf", "tokenizer.ggml.model");
  GgufWriter no_tokens;
  no_tokens.add_string("tokenizer.ggml.model", "llama");
  expect_format_error(no_tokens, "no_tokens.gguf", "tokenizer.ggml.tokens");
  GgufWriter short_scores;
  short_scores.add_string("tokenizer.ggml.model", "llama");
  short_scores.add_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
  short_scores.add_floats("tokenizer.ggml.scores", {0, 0});
  expect_format_error(short_scores, "short_scores.gguf", "tokenizer.ggml.scores");
  GgufWriter bad_eos;
  bad_eos.add_string("tokenizer.ggml.model", "llama");
  bad_eos.add_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
  bad_eos.add_floats("tokenizer.ggml.scores", {0, 0, 0});
  bad_eos.add_u32("tokenizer.ggml.eos_token_id", 7);
  expect_format_error(bad_eos, "bad_eos.gguf", "tokenizer.ggml.eos_token_id");
  // The all-ones id means "none".
  GgufWriter no_pad;
  no_pad.add_string("tokenizer.ggml.model", "llama");
  no_pad.add_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81x"});
  no_pad.add_floats("tokenizer.ggml.scores", {0, 0, 0, -1});
  no_pad.add_u32("tokenizer.ggml.bos_token_id", 0xFFFFFFFFu);
  const auto path = dir / "no_bos.gguf";
  no_pad.write(path);
  const Tokenizer t = load_tokenizer(GgufFile::open(path.string()));
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_FALSE(t.adds_bos());
  EXPECT_EQ(t.encode("x", true), (Ids{3}));
}

}  // namespace
}  // namespace slm
