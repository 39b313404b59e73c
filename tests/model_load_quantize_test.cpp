// LoadOptions::quantize / --quantize: matrices converted once at load run exactly like the same
// model quantized by `slm quantize` (the same bytes, so the same logits), from GGUF files and
// Hugging Face directories.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

const std::string kStories = "models/stories260K/";

std::vector<float> logits(const Model& model) {
  const std::vector<int32_t> tokens = test::read_ids(data_path(kStories + "reference/tokens.txt"));
  Session session(model, {.kv_type = KvType::kF32});
  const auto out = session.eval(tokens, /*all_logits=*/true);
  return {out.begin(), out.end()};
}

class LoadQuantizeTest : public testing::TestWithParam<std::string> {};

TEST_P(LoadQuantizeTest, SameLogitsAsSlmQuantizeFile) {
  const std::string type = GetParam();
  const std::string in = data_path(kStories + "stories260K.gguf").string();
  SLM_REQUIRE_DATA(in);
  const std::string file = (test::temp_dir() / "q.gguf").string();
  quantize_model_file(in, file, {.type = type});
  size_t calls = 0, last_total = 0;
  uint64_t last_before = 0, last_after = 0;
  LoadOptions o;
  o.quantize = type;
  o.on_quantize = [&](size_t done, size_t total, uint64_t before, uint64_t after) {
    EXPECT_EQ(done, ++calls);
    last_total = total;
    last_before = before;
    last_after = after;
  };
  const Model at_load = Model::load(in, o);
  const Model from_file = Model::load(file);
  EXPECT_EQ(logits(at_load), logits(from_file));
  EXPECT_EQ(calls, 37u);  // token_embd, output and 7 per block
  EXPECT_EQ(last_total, 37u);
  EXPECT_EQ(at_load.info().weight_types, from_file.info().weight_types);
  EXPECT_EQ(at_load.info().weight_bytes, from_file.info().weight_bytes);
  EXPECT_EQ(at_load.info().weight_bytes_before_quantize, Model::load(in).info().weight_bytes);
  EXPECT_EQ(last_before - last_after,
            at_load.info().weight_bytes_before_quantize - at_load.info().weight_bytes);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, LoadQuantizeTest, testing::Values("q8_0", "q4_0", "q4_k"));

TEST(LoadQuantize, HfDirectoryLikeItsConvertedFile) {
  const fs::path dir = data_path(kStories + "hf-bf16");
  SLM_REQUIRE_DATA(dir);
  const std::string file = (test::temp_dir() / "c.gguf").string();
  convert_hf_model(dir.string(), file, {.type = "q4_0"});
  LoadOptions o;
  o.quantize = "q4_0";
  const std::vector<float> a = logits(Model::load(dir.string(), o));
  const std::vector<float> b = logits(Model::load(file));
  ASSERT_EQ(a.size(), b.size());
  // The same blocks; only the RoPE layout (half-split here, interleaved in the file) differs.
  for (size_t row = 0; row < a.size() / 512; ++row) {
    EXPECT_LE(test::nmse(&a[row * 512], &b[row * 512], 512), 1e-12) << "row " << row;
  }
}

TEST(LoadQuantize, QuantizedFileAndNoneAreUnchanged) {
  const std::string q4 = data_path(kStories + "stories260K-Q4_0.gguf").string();
  SLM_REQUIRE_DATA(q4);
  LoadOptions o;
  o.quantize = "q8_0";  // only the F32 ffn_down matrices could change: their rows are 172 wide
  const Model model = Model::load(q4, o);
  EXPECT_EQ(logits(model), logits(Model::load(q4)));
  EXPECT_EQ(Model::load(q4).info().weight_bytes_before_quantize, 0u);
}

TEST(LoadQuantize, UnknownTypeIsAnError) {
  LoadOptions o;
  for (const char* type : {"q6_k", "f16", "q4_k_m", "junk"}) {
    o.quantize = type;
    EXPECT_THROW(Model::load(data_path(kStories + "stories260K.gguf").string(), o),
                 InvalidArgumentError)
        << type;
  }
}

TEST(LoadQuantizeCli, LogitsLikeTheQuantizedFile) {
  const std::string in = data_path(kStories + "stories260K.gguf").string();
  SLM_REQUIRE_DATA(in);
  const fs::path tmp = test::temp_dir();
  ASSERT_EQ(test::run_slm({"quantize", in, (tmp / "q.gguf").string(), "q8_0"}).code, 0);
  const test::CliResult a = test::run_slm({"logits", "-m", in, "--quantize", "q8_0", "--tokens",
                                           "1 403 407 261 378", "-o", (tmp / "a.f32").string()});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("quantized to q8_0 at load: 1168384 -> 472032 bytes"), std::string::npos)
      << a.err;
  ASSERT_EQ(test::run_slm({"logits", "-m", (tmp / "q.gguf").string(), "--tokens",
                           "1 403 407 261 378", "-o", (tmp / "b.f32").string()})
                .code,
            0);
  EXPECT_EQ(test::read_f32(tmp / "a.f32"), test::read_f32(tmp / "b.f32"));
  const test::CliResult bad =
      test::run_slm({"run", "-m", in, "--quantize", "q5_0", "--tokens", "1"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown --quantize type 'q5_0'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace slm
