// Fuzzing every shipped tokenizer (tokenizer/hf/*, tokenizer/llamacpp/*.gguf) with random bytes
// (invalid UTF-8 included), random valid Unicode from several scripts and random mixes of
// added/special token texts. Fixed seed, a few thousand strings in all.
//
// Properties, per family:
// - every family: encode never throws, every id is in [0, vocab_size), and the streaming
//   decoder fed one id at a time only ever returns valid UTF-8; when decode(ids) is valid
//   UTF-8 the stream's text equals it.
// - byte-level BPE (GGUF gpt2, Hugging Face ByteLevel): decode(encode(x)) == normalize(x) for
//   ANY bytes x, invalid UTF-8 included (no byte is lost; the normalizer, e.g. Qwen's NFC,
//   leaves invalid text alone).
// - SentencePiece-style BPE with byte fallback (GGUF llama, Hugging Face BPE + byte_fallback):
//   decode(encode(x)) == x for valid UTF-8 x without U+2581 (which these vocabularies use for
//   ' ') whose ids contain no unk token.
// - WordPiece: lowercases and strips accents, so only the first property.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "slm/error.h"
#include "slm/tokenizer.h"
#include "src/tokenizer/normalizer.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "tests/test_data.h"

namespace slm {
namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2, cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += len;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class TextGen {
 public:
  explicit TextGen(uint32_t seed) : rng_(seed) {}

  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  // Bytes biased towards the ways UTF-8 goes wrong.
  std::string bytes() {
    static const std::vector<std::string> kBad = {
        "\x80", "\xBF", "\xC0\xAF", "\xC1\x81", "\xE0\x80\xAF", "\xF0\x80\x80\xAF",  // overlongs
        "\xED\xA0\x80", "\xED\xBF\xBF",                                              // surrogates
        "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF",                   // too big
        "\xC3", "\xE2\x96", "\xF0\x9F\xA6",                                          // truncated
        std::string(1, '\0'), "\xE2\x96\x81", " ", "\n", "a", "Z", "7", "'s", "\t"};
    std::string s;
    const size_t n = below(24);
    for (size_t i = 0; i < n; ++i) {
      if (below(3) == 0) {
        s += static_cast<char>(below(256));
      } else {
        s += kBad[below(kBad.size())];
      }
    }
    return s;
  }

  // Valid UTF-8 from several scripts, spaces, digits, marks and emoji (ZWJ sequences too).
  std::string unicode() {
    static const std::vector<std::pair<uint32_t, uint32_t>> kRanges = {
        {0x20, 0x7E},     {0x20, 0x7E},     {0xA0, 0xFF},     {0x100, 0x17F},
        {0x370, 0x3FF},   {0x400, 0x4FF},   {0x591, 0x5F4},   {0x600, 0x6FF},
        {0x900, 0x97F},   {0xE00, 0xE5B},   {0x1100, 0x11FF}, {0x300, 0x36F},
        {0x2000, 0x206F}, {0x3000, 0x303F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF},
        {0xAC00, 0xD7A3}, {0xFF00, 0xFFEF}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF},
        {0x20000, 0x2A6DF}, {0x9, 0xD}};
    std::string s;
    const size_t n = below(20);
    for (size_t i = 0; i < n; ++i) {
      if (below(10) == 0) {
        s += below(2) ? " " : "\xE2\x80\x8D";  // space or ZWJ
        continue;
      }
      const auto& [lo, hi] = kRanges[below(kRanges.size())];
      const size_t run = 1 + below(4);
      for (size_t k = 0; k < run; ++k) append_utf8(s, static_cast<uint32_t>(lo + below(hi - lo + 1)));
    }
    return s;
  }

  // Special and added token texts glued with text.
  std::string specials(const std::vector<std::string>& texts) {
    std::string s;
    const size_t n = 1 + below(6);
    for (size_t i = 0; i < n; ++i) {
      switch (below(4)) {
        case 0:
          s += unicode();
          break;
        case 1:
          s += bytes();
          break;
        default:
          if (!texts.empty()) s += texts[below(texts.size())];
      }
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

struct Family {
  bool byte_level = false;
  bool spm = false;  // SentencePiece-style with byte fallback
};

Family family_of(const Tokenizer& t) {
  const Vocab& v = t.impl().vocab;
  Family f;
  f.byte_level = v.kind == VocabKind::kBpe && v.byte_level;
  f.spm = v.kind == VocabKind::kLlama || (v.kind == VocabKind::kBpe && !v.byte_level && v.byte_fallback);
  return f;
}

void check_stream(const Tokenizer& t, const std::vector<TokenId>& ids, const std::string& what) {
  Tokenizer::StreamDecoder stream(t);
  std::string streamed;
  for (TokenId id : ids) {
    const std::string piece = stream.push(id);
    ASSERT_TRUE(valid_utf8(piece)) << what;
    streamed += piece;
  }
  const std::string rest = stream.flush();
  ASSERT_TRUE(valid_utf8(rest)) << what;
  streamed += rest;
  const std::string decoded = t.decode(ids);
  if (valid_utf8(decoded)) {
    EXPECT_EQ(streamed, decoded) << what;
  }
}

std::string hex(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool lacks_byte(const Tokenizer::Impl& impl, std::string_view text) {
  for (unsigned char c : text) {
    if (impl.bpe.byte_symbol[c] < 0) return true;
  }
  return false;
}

void fuzz(const Tokenizer& t, const std::string& name, uint32_t seed, int per_kind) {
  TextGen gen(seed);
  const Family family = family_of(t);
  const Tokenizer::Impl& impl = t.impl();
  std::vector<std::string> special_texts;
  for (const AddedToken& token : impl.added.tokens) {
    if (special_texts.size() < 200) special_texts.push_back(impl.vocab.tokens[token.id]);
  }
  const int32_t n = t.vocab_size();
  int round_trips = 0;
  for (int kind = 0; kind < 3; ++kind) {
    for (int i = 0; i < per_kind; ++i) {
      const std::string text = kind == 0 ? gen.bytes() : kind == 1 ? gen.unicode() : gen.specials(special_texts);
      const std::string what = name + " input \"" + hex(text) + "\"";
      for (const bool parse_special : {false, true}) {
        std::vector<TokenId> ids;
        try {
          ids = t.encode(text, /*add_bos=*/parse_special, parse_special);
        } catch (const UnsupportedError& e) {
          // Documented: a byte-level vocabulary without a token for some byte value (falcon,
          // mpt, starcoder... drop the bytes that valid UTF-8 never uses) refuses text with it.
          ASSERT_TRUE(family.byte_level && lacks_byte(impl, text)) << what << ": " << e.what();
          continue;
        } catch (const std::exception& e) {
          FAIL() << what << ": " << e.what();
        }
        for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < n) << what << " id " << id;
        check_stream(t, ids, what);
        if (parse_special) continue;
        const std::string decoded = t.decode(ids);
        if (family.byte_level) {
          ++round_trips;
          EXPECT_EQ(hex(decoded), hex(normalize(impl.pipeline.normalizer, text))) << what;
        } else if (family.spm && valid_utf8(text) && text.find("\xE2\x96\x81") == std::string::npos &&
                   std::find(ids.begin(), ids.end(), impl.vocab.unk) == ids.end()) {
          ++round_trips;
          EXPECT_EQ(hex(decoded), hex(text)) << what;
        }
      }
    }
  }
  if (family.byte_level || family.spm) {
    EXPECT_GT(round_trips, per_kind) << name;
  }
}

constexpr int kPerKind = 70;  // strings of each kind per tokenizer

TEST(TokenizerFuzz, HfTokenizers) {
  const auto root = test::data_path("tokenizer/hf");
  SLM_REQUIRE_DATA(root / "llama3" / "tokenizer.json");
  uint32_t seed = 1234;
  for (const char* name : {"llama2", "llama3", "qwen3", "gemma3", "deepseek_v3"}) {
    const auto path = root / name / "tokenizer.json";
    if (!std::filesystem::exists(path)) continue;
    fuzz(Tokenizer::from_file(path.string()), name, seed++, kPerKind);
  }
}

TEST(TokenizerFuzz, LlamaCppVocabs) {
  const auto root = test::data_path("tokenizer/llamacpp");
  SLM_REQUIRE_DATA(root / "ggml-vocab-gpt-2.gguf");
  uint32_t seed = 4321;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.path().extension() == ".gguf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    fuzz(Tokenizer::from_file(path.string()), path.filename().string(), seed++, kPerKind);
  }
}

}  // namespace
}  // namespace slm
