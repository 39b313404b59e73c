// `slm quantize` (quantize_model_file): stories260K F32 → Q8_0 / Q4_0 gives tensors
// byte-identical to the files ggml's reference quantizer made, → q4_k_m byte-identical to
// llama-quantize's file (its K-quant fallbacks); metadata is carried over; errors are clear.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "tests/test_data.h"

namespace slm {
namespace {

std::string stories(const std::string& file) {
  return test::data_path("models/stories260K/" + file).string();
}

// Every tensor of `expected` has the same dims, type and bytes in `actual`, and no more.
void expect_same_tensors(const std::string& actual_path, const std::string& expected_path) {
  const GgufFile actual = GgufFile::open(actual_path);
  const GgufFile expected = GgufFile::open(expected_path);
  ASSERT_EQ(actual.tensors().size(), expected.tensors().size());
  for (const GgufTensor& e : expected.tensors()) {
    const GgufTensor* a = actual.find_tensor(e.name);
    ASSERT_NE(a, nullptr) << e.name;
    EXPECT_EQ(a->dims, e.dims) << e.name;
    EXPECT_EQ(a->type, e.type) << e.name << ": " << dtype_name(a->type) << " vs "
                               << dtype_name(e.type);
    ASSERT_EQ(a->n_bytes, e.n_bytes) << e.name;
    EXPECT_EQ(std::memcmp(a->data, e.data, size_t(e.n_bytes)), 0) << e.name;
  }
}

class QuantizeReferenceTest : public testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(QuantizeReferenceTest, TensorsMatchGgmlReferenceFile) {
  const auto& [type, reference] = GetParam();
  SLM_REQUIRE_DATA(stories("stories260K.gguf"));
  const std::string out = (test::temp_dir() / "out.gguf").string();
  const QuantizeResult r = quantize_model_file(stories("stories260K.gguf"), out, {.type = type});
  expect_same_tensors(out, stories(reference));
  EXPECT_EQ(r.bytes_out, std::filesystem::file_size(out));
  EXPECT_EQ(r.bytes_in, std::filesystem::file_size(stories("stories260K.gguf")));
  EXPECT_EQ(r.unchanged, 11u);  // the norms
  // Every metadata key of the input is there with its value; general.file_type is the
  // reference file's.
  const GgufFile in = GgufFile::open(stories("stories260K.gguf"));
  const GgufFile written = GgufFile::open(out);
  for (const GgufKv& kv : in.metadata()) EXPECT_NE(written.find(kv.key), nullptr) << kv.key;
  EXPECT_EQ(written.get_string_array("tokenizer.ggml.tokens"),
            in.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(written.require_uint("general.file_type"),
            GgufFile::open(stories(reference)).require_uint("general.file_type"));
}

INSTANTIATE_TEST_SUITE_P(
    Stories260K, QuantizeReferenceTest,
    testing::Values(std::pair<std::string, std::string>{"q8_0", "stories260K-Q8_0.gguf"},
                    std::pair<std::string, std::string>{"q4_0", "stories260K-Q4_0.gguf"},
                    std::pair<std::string, std::string>{"q4_k_m",
                                                        "stories260K-Q4_K_M-fallback.gguf"},
                    std::pair<std::string, std::string>{"f16", "stories260K-F16.gguf"}),
    [](const auto& info) { return info.param.first; });

TEST(Quantize, ReportsFallbacksForRowsNotWholeBlocks) {
  SLM_REQUIRE_DATA(stories("stories260K.gguf"));
  const std::string out = (test::temp_dir() / "out.gguf").string();
  const QuantizeResult r = quantize_model_file(stories("stories260K.gguf"), out, {.type = "q8_0"});
  // ffn_down rows hold 172 elements: not whole Q8_0 blocks, kept F32 like the reference file.
  ASSERT_EQ(r.fallbacks.size(), 5u);
  EXPECT_EQ(r.fallbacks[0], "blk.0.ffn_down.weight: f32 (rows of 172, not whole q8_0 blocks)");
  EXPECT_EQ(r.converted, 32u);
  // A K-quant falls back to its 32-element type where that fits (64-wide rows: Q5_0).
  const QuantizeResult k = quantize_model_file(stories("stories260K.gguf"), out, {.type = "q4_k"});
  EXPECT_EQ(k.converted, 0u);
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, DType::kQ5_0);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->type, DType::kF32);
  EXPECT_EQ(f.require_uint("general.quantization_version"), 2u);
}

TEST(Quantize, QuantizedInputToItsOwnTypeIsCopied) {
  SLM_REQUIRE_DATA(stories("stories260K-Q8_0.gguf"));
  const std::string out = (test::temp_dir() / "out.gguf").string();
  quantize_model_file(stories("stories260K-Q8_0.gguf"), out, {.type = "q8_0"});
  expect_same_tensors(out, stories("stories260K-Q8_0.gguf"));
}

TEST(Quantize, QuantizedInputToAnotherTypeIsRefused) {
  SLM_REQUIRE_DATA(stories("stories260K-Q8_0.gguf"));
  const std::string out = (test::temp_dir() / "out.gguf").string();
  try {
    quantize_model_file(stories("stories260K-Q8_0.gguf"), out, {.type = "q4_0"});
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'token_embd.weight' is already q8_0"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Quantize, UnknownTypeAndUnreadableInputAreErrors) {
  const std::filesystem::path dir = test::temp_dir();
  const std::string out = (dir / "out.gguf").string();
  EXPECT_THROW(quantize_model_file(stories("stories260K.gguf"), out, {.type = "q3_x"}),
               InvalidArgumentError);
  EXPECT_THROW(quantize_model_file((dir / "missing.gguf").string(), out, {.type = "q8_0"}),
               IoError);
  std::ofstream(dir / "junk.gguf", std::ios::binary) << "GGUF\x03\x00\x00\x00junk";
  EXPECT_THROW(quantize_model_file((dir / "junk.gguf").string(), out, {.type = "q8_0"}),
               FormatError);
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(QuantizeCli, WritesFileAndReportsBytes) {
  SLM_REQUIRE_DATA(stories("stories260K.gguf"));
  const std::string out = (test::temp_dir() / "out.gguf").string();
  const test::CliResult r = test::run_slm({"quantize", stories("stories260K.gguf"), out, "q4_0"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("fallback blk.4.ffn_down.weight: f32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1185376 -> "), std::string::npos) << r.err;
  expect_same_tensors(out, stories("stories260K-Q4_0.gguf"));

  const test::CliResult bad = test::run_slm({"quantize", stories("stories260K.gguf"), out, "q9"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown type 'q9'"), std::string::npos) << bad.err;
  const test::CliResult missing = test::run_slm({"quantize", stories("stories260K.gguf")});
  EXPECT_EQ(missing.code, 2);
  const test::CliResult requant =
      test::run_slm({"quantize", stories("stories260K-Q4_0.gguf"), out, "q8_0"});
  EXPECT_EQ(requant.code, 1);
  EXPECT_NE(requant.err.find("already q4_0"), std::string::npos) << requant.err;
}

}  // namespace
}  // namespace slm
