// slm convert's GGUF tokenizer (write_gguf_tokenizer): for every real tokenizer.json in
// ../shared/tokenizer/hf, the keys written to a GGUF file and loaded back by the GGUF tokenizer
// give Hugging Face's ids on all expected.jsonl lines.
#include "src/model/convert_tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "src/tokenizer/gguf_tokenizer.h"
#include "src/tokenizer/normalizer.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

struct Expected {
  std::string text;
  std::vector<TokenId> ids;          // add_special_tokens=false
  std::vector<TokenId> ids_special;  // add_special_tokens=true
};

std::vector<Expected> read_expected(const fs::path& path) {
  std::vector<Expected> out;
  std::ifstream in(path);
  simdjson::dom::parser parser;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const simdjson::dom::object o = parser.parse(line).get_object();
    Expected e;
    e.text = std::string(o["text"].get_string().value());
    for (const int64_t id : o["ids"].get_array()) e.ids.push_back(TokenId(id));
    for (const int64_t id : o["ids_special"].get_array()) e.ids_special.push_back(TokenId(id));
    out.push_back(std::move(e));
  }
  return out;
}

// A GGUF file of the tokenizer keys written for `name`'s tokenizer.json, padded with `extra`
// more tokens.
fs::path written_tokenizer(const std::string& name, int32_t extra) {
  const fs::path dir = data_path("tokenizer/hf") / name;
  const int32_t n = Tokenizer::from_file(dir.string()).vocab_size() + extra;
  GgufWriter w;
  EXPECT_EQ(write_gguf_tokenizer(dir.string(), n, w), "") << name;
  const fs::path out = test::temp_dir() / (name + ".gguf");
  fs::create_directories(out.parent_path());
  w.write(out.string());
  return out;
}

class ConvertTokenizer : public testing::TestWithParam<std::string> {};

TEST_P(ConvertTokenizer, GgufKeysGiveHuggingFaceIds) {
  const std::string name = GetParam();
  const fs::path dir = data_path("tokenizer/hf") / name;
  SLM_REQUIRE_DATA(dir / "tokenizer.json");
  const GgufFile file = GgufFile::open(written_tokenizer(name, 0).string());
  const Tokenizer t = load_tokenizer(file);
  const Tokenizer hf = Tokenizer::from_file(dir.string());
  EXPECT_EQ(t.vocab_size(), hf.vocab_size());
  EXPECT_EQ(t.bos_id(), hf.bos_id());
  EXPECT_EQ(t.eos_id(), hf.eos_id());
  EXPECT_EQ(t.adds_bos(), hf.adds_bos());
  // Llama 2's tokenizer_config.json names </s> next to a 31-digit model_max_length.
  if (name == "llama2") {
    EXPECT_EQ(hf.eos_id(), 2);
  }
  std::cout << name << ": tokenizer.ggml.model " << file.require_string("tokenizer.ggml.model")
            << ", pre " << file.get_string("tokenizer.ggml.pre").value_or("-") << "\n";
  size_t lines = 0, wrong = 0;
  for (const Expected& e : read_expected(dir / "expected.jsonl")) {
    ++lines;
    // Hugging Face matches added tokens in text even without add_special_tokens.
    // Qwen's NFC normalizer has no GGUF key (llama.cpp drops it too): the GGUF tokenizer is
    // given the NFC text, which is what Hugging Face tokenizes.
    const std::string text =
        name == "qwen3" ? normalize({NormalizerStep::of(NormalizerStep::Kind::kNfc)}, e.text)
                        : e.text;
    const std::vector<TokenId> ids = t.encode(text, /*add_bos=*/false, /*parse_special=*/true);
    if (ids != e.ids) {
      ++wrong;
      ADD_FAILURE() << name << ": " << testing::PrintToString(e.text);
    }
  }
  EXPECT_GT(lines, 300u);
  EXPECT_EQ(wrong, 0u) << name << ": " << wrong << " of " << lines << " lines differ";
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ConvertTokenizer,
                         testing::Values("llama2", "llama3", "qwen3", "gemma3", "deepseek_v3"));

TEST(ConvertTokenizerKeys, NamesAndPadding) {
  SLM_REQUIRE_DATA(data_path("tokenizer/hf/qwen3/tokenizer.json"));
  SLM_REQUIRE_DATA(data_path("tokenizer/hf/llama2/tokenizer.json"));
  const GgufFile qwen3 = GgufFile::open(written_tokenizer("qwen3", 7).string());
  const Tokenizer t = load_tokenizer(qwen3);
  EXPECT_EQ(qwen3.require_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(qwen3.require_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_NE(qwen3.require_string("tokenizer.chat_template").find("<|im_start|>"),
            std::string::npos);
  const auto tokens = qwen3.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->back(), fmt::format("[PAD{}]", tokens->size() - 1));  // padded, unused
  EXPECT_EQ(qwen3.get_int_array("tokenizer.ggml.token_type")->back(), 5);
  EXPECT_TRUE(t.is_eog(151645));  // <|im_end|>
  const GgufFile llama2 = GgufFile::open(written_tokenizer("llama2", 0).string());
  EXPECT_EQ(llama2.require_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(llama2.get_bool("tokenizer.ggml.add_space_prefix"), true);
  EXPECT_EQ(llama2.find("tokenizer.chat_template"), nullptr);
}

void copy_tokenizer(const std::string& name, const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(data_path("tokenizer/hf") / name / file, dir / file,
                  fs::copy_options::overwrite_existing);
  }
}

TEST(ConvertTokenizerKeys, WhyNothingWasWritten) {
  SLM_REQUIRE_DATA(data_path("tokenizer/hf/llama3/tokenizer.json"));
  const fs::path tmp = test::temp_dir();
  GgufWriter w;
  EXPECT_NE(write_gguf_tokenizer((tmp / "none").string(), 512, w).find("no tokenizer.json"),
            std::string::npos);
  copy_tokenizer("llama3", tmp / "big");
  const std::string note = write_gguf_tokenizer((tmp / "big").string(), 512, w);
  EXPECT_NE(note.find("128256 tokens but the model only 512"), std::string::npos) << note;
  EXPECT_FALSE(w.has_key("tokenizer.ggml.model"));
  EXPECT_TRUE(w.has_key("tokenizer.chat_template"));  // the template is written anyway
  // A pre-tokenizer that no GGUF name reproduces: words split at every 'e'.
  fs::create_directories(tmp / "odd");
  std::string json = test::read_text(data_path("tokenizer/hf/llama3/tokenizer.json"));
  const std::string from = R"("Regex": ")";
  const size_t at = json.find(from);
  ASSERT_NE(at, std::string::npos);
  json.insert(at + from.size(), "e|");
  std::ofstream(tmp / "odd" / "tokenizer.json", std::ios::binary) << json;
  GgufWriter odd;
  const std::string odd_note = write_gguf_tokenizer((tmp / "odd").string(), 200000, odd);
  EXPECT_NE(odd_note.find("no tokenizer.ggml.pre"), std::string::npos) << odd_note;
  EXPECT_FALSE(odd.has_key("tokenizer.ggml.model"));
  // Malformed tokenizer.json: an error, not a note.
  std::ofstream(tmp / "odd" / "tokenizer.json", std::ios::binary) << "{\"model\": ";
  EXPECT_THROW(write_gguf_tokenizer((tmp / "odd").string(), 200000, odd), FormatError);
}

}  // namespace
}  // namespace slm
