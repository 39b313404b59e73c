// `slm convert` (convert_hf_model): a Hugging Face directory to GGUF. Zoo directories in F32 give
// the directory's logits; stories260K's hf-f32 gives the tensors (q/k permuted back to the
// interleaved order) and the logits of the reference GGUF llama.cpp's tools made.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

const std::string kStories = "models/stories260K/";

std::vector<float> logits(const std::string& path, const std::vector<int32_t>& tokens) {
  const Model model = Model::load(path);
  Session session(model, {.kv_type = KvType::kF32});
  const auto out = session.eval(tokens, /*all_logits=*/true);
  return {out.begin(), out.end()};
}

std::vector<int32_t> zoo_tokens() {
  std::string text = test::read_text(data_path("zoo/hf/tokens.json"));
  for (char& c : text) {
    if (c == '[' || c == ']' || c == ',') c = ' ';
  }
  std::vector<int32_t> ids;
  std::istringstream in(text);
  for (int32_t id = 0; in >> id;) ids.push_back(id);
  return ids;
}

// A zoo directory converted to GGUF F32 runs like the directory (same weights, same graph).
struct ZooCase {
  std::string name;          // zoo/hf/<name>
  std::string architecture;  // general.architecture written
};

class ConvertZoo : public testing::TestWithParam<ZooCase> {};

TEST_P(ConvertZoo, F32GivesTheDirectorysLogits) {
  const ZooCase& c = GetParam();
  const fs::path dir = data_path("zoo/hf/" + c.name);
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / (c.name + ".gguf")).string();
  const ConvertResult r = convert_hf_model(dir.string(), out, {.type = "f32"});
  EXPECT_EQ(r.bytes_out, fs::file_size(out));
  EXPECT_NE(r.tokenizer_note.find("no tokenizer.json"), std::string::npos);
  const std::vector<int32_t> tokens = zoo_tokens();
  ASSERT_EQ(tokens.size(), 64u);
  const std::vector<float> a = logits(dir.string(), tokens), b = logits(out, tokens);
  ASSERT_EQ(a.size(), b.size());
  for (size_t row = 0; row < a.size() / 512; ++row) {
    EXPECT_LE(test::nmse(&b[row * 512], &a[row * 512], 512), 1e-12) << "row " << row;
  }
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.require_string("general.architecture"), c.architecture);
  EXPECT_EQ(f.require_uint("general.file_type"), 0u);
  EXPECT_EQ(f.tensors().size(), r.tensor_count);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ConvertZoo,
                         testing::Values(ZooCase{"llama", "llama"}, ZooCase{"qwen2", "qwen2"},
                                         ZooCase{"qwen3", "qwen3"}),
                         [](const auto& info) { return info.param.name; });

TEST(ConvertHf, ZooLlamaKeysAndTensors) {
  const fs::path dir = data_path("zoo/hf/llama");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "llama.gguf").string();
  const ConvertResult r = convert_hf_model(dir.string(), out, {.type = "f32"});
  EXPECT_EQ(r.tensor_count, 21u);
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.require_uint("llama.attention.head_count_kv"), 2u);
  EXPECT_NE(f.find_tensor("output.weight"), nullptr);  // not tied
}

// Llama 3 RoPE scaling goes into rope_freqs.weight, which the GGUF loader reads back.
TEST(ConvertHf, Llama3RopeScalingGivesTheDirectorysLogits) {
  const fs::path dir = data_path("zoo/hf/llama3-rope");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "llama3.gguf").string();
  const ConvertResult r = convert_hf_model(dir.string(), out, {.type = "f32"});
  const GgufFile f = GgufFile::open(out);
  const GgufTensor* freqs = f.find_tensor("rope_freqs.weight");
  ASSERT_NE(freqs, nullptr);
  EXPECT_EQ(freqs->type, DType::kF32);
  EXPECT_EQ(freqs->dims, std::vector<uint64_t>{f.require_uint("llama.rope.dimension_count") / 2});
  EXPECT_EQ(r.tensor_count, f.tensors().size());
  const std::vector<int32_t> tokens = zoo_tokens();
  const std::vector<float> a = logits(dir.string(), tokens), b = logits(out, tokens);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t row = 0; row < a.size() / 512; ++row) {
    worst = std::max(worst, test::nmse(&b[row * 512], &a[row * 512], 512));
  }
  EXPECT_LE(worst, 1e-12);
  std::cout << "llama3-rope: GGUF F32 vs directory, worst NMSE " << worst << "\n";
  // Without the tensor the model is a different one: proof that it is applied.
  GgufWriter copy;
  for (const GgufKv& kv : f.metadata()) copy.set(kv.key, GgufMetaValue::from(kv.value));
  for (const GgufTensor& t : f.tensors()) {
    if (t.name != "rope_freqs.weight") {
      copy.add_tensor_view(t.name, t.dims, t.type, {t.data, size_t(t.n_bytes)});
    }
  }
  const std::string plain = (test::temp_dir() / "plain.gguf").string();
  copy.write(plain);
  const std::vector<float> c = logits(plain, tokens);
  EXPECT_GT(test::nmse(&c[63 * 512], &a[63 * 512], 512), 1e-6);
}

TEST(ConvertHf, BadRopeFreqsAreFormatErrors) {
  const fs::path dir = data_path("zoo/hf/llama3-rope");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "llama3.gguf").string();
  convert_hf_model(dir.string(), out, {.type = "f32"});
  const GgufFile f = GgufFile::open(out);
  const auto write_with = [&](std::vector<uint64_t> dims, DType type, std::vector<float> values) {
    GgufWriter copy;
    for (const GgufKv& kv : f.metadata()) copy.set(kv.key, GgufMetaValue::from(kv.value));
    for (const GgufTensor& t : f.tensors()) {
      if (t.name != "rope_freqs.weight") {
        copy.add_tensor_view(t.name, t.dims, t.type, {t.data, size_t(t.n_bytes)});
      }
    }
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    if (type == DType::kF16) bytes.resize(bytes.size() / 2);
    copy.add_tensor("rope_freqs.weight", std::move(dims), type, bytes);
    const std::string path = (test::temp_dir() / "bad.gguf").string();
    copy.write(path);
    return path;
  };
  const uint64_t n = f.require_uint("llama.rope.dimension_count") / 2;
  const auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      Model::load(path);
      FAIL() << "expected a FormatError mentioning " << needle;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(write_with({n + 1}, DType::kF32, std::vector<float>(n + 1, 1.0f)), "shape");
  expect_error(write_with({n}, DType::kF16, std::vector<float>(n, 1.0f)), "expected f32");
  std::vector<float> zero(n, 1.0f);
  zero[3] = 0;
  expect_error(write_with({n}, DType::kF32, zero), "positive divisor");
}

TEST(ConvertHf, Stories260KGivesTheReferenceGguf) {
  const fs::path dir = data_path(kStories + "hf-f32");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "stories.gguf").string();
  convert_hf_model(dir.string(), out, {.type = "f32"});
  const GgufFile converted = GgufFile::open(out);
  const GgufFile reference = GgufFile::open(data_path(kStories + "stories260K.gguf").string());
  // Tied embeddings: no output.weight (the reference carries a copy of token_embd).
  EXPECT_EQ(converted.find_tensor("output.weight"), nullptr);
  ASSERT_EQ(converted.tensors().size() + 1, reference.tensors().size());
  for (const GgufTensor& t : converted.tensors()) {
    const GgufTensor* e = reference.find_tensor(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ(t.dims, e->dims) << t.name;
    ASSERT_EQ(t.n_bytes, e->n_bytes) << t.name;
    // attn_q / attn_k too: the half-split rows are permuted back to the interleaved order.
    EXPECT_EQ(std::memcmp(t.data, e->data, size_t(t.n_bytes)), 0) << t.name;
  }
  const std::vector<int32_t> tokens = test::read_ids(data_path(kStories + "reference/tokens.txt"));
  EXPECT_EQ(logits(out, tokens), logits(reference.path(), tokens));
}

TEST(ConvertHf, QuantizedTypesMatchSlmQuantize) {
  const fs::path dir = data_path(kStories + "hf-f32");
  SLM_REQUIRE_DATA(dir);
  const fs::path tmp = test::temp_dir();
  const ConvertResult r =
      convert_hf_model(dir.string(), (tmp / "c.gguf").string(), {.type = "q8_0"});
  EXPECT_EQ(r.fallbacks.size(), 5u);  // ffn_down: rows of 172
  quantize_model_file(data_path(kStories + "stories260K.gguf").string(), (tmp / "q.gguf").string(),
                      {.type = "q8_0"});
  const GgufFile c = GgufFile::open((tmp / "c.gguf").string());
  const GgufFile q = GgufFile::open((tmp / "q.gguf").string());
  for (const GgufTensor& t : c.tensors()) {
    const GgufTensor* e = q.find_tensor(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ(t.type, e->type) << t.name;
    ASSERT_EQ(t.n_bytes, e->n_bytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, e->data, size_t(t.n_bytes)), 0) << t.name;
  }
}

TEST(ConvertHf, Errors) {
  const fs::path tmp = test::temp_dir();
  const std::string out = (tmp / "out.gguf").string();
  const std::string llama = data_path("zoo/hf/llama").string();
  EXPECT_THROW(convert_hf_model(llama, out, {.type = "q5_k_m"}), InvalidArgumentError);
  EXPECT_THROW(convert_hf_model((tmp / "missing").string(), out, {.type = "f32"}), IoError);
  // config.json without weights.
  fs::create_directories(tmp / "empty");
  fs::copy_file(data_path("zoo/hf/llama/config.json"), tmp / "empty" / "config.json",
                fs::copy_options::overwrite_existing);
  EXPECT_THROW(convert_hf_model((tmp / "empty").string(), out, {.type = "f32"}), Error);
  EXPECT_FALSE(fs::exists(out));
}

TEST(ConvertCli, WritesFileAndSaysThereIsNoTokenizer) {
  const fs::path dir = data_path(kStories + "hf-bf16");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "out.gguf").string();
  const test::CliResult r = test::run_slm({"convert", dir.string(), out});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("no tokenizer written"), std::string::npos) << r.err;
  EXPECT_EQ(GgufFile::open(out).find_tensor("token_embd.weight")->type, DType::kF16);
  const test::CliResult bad = test::run_slm({"convert", dir.string(), out, "--type", "q2_k"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown type 'q2_k'"), std::string::npos) << bad.err;
  EXPECT_EQ(test::run_slm({"convert", dir.string()}).code, 2);
}

}  // namespace
}  // namespace slm
