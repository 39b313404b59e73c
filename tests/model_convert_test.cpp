// `slm convert` (convert_hf_model): a Hugging Face directory to GGUF. Zoo directories in F32 give
// the directory's logits; stories260K's hf-f32 gives the tensors (q/k permuted back to the
// interleaved order) and the logits of the reference GGUF llama.cpp's tools made.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

std::vector<float> logits(const std::string& path, const std::vector<int32_t>& tokens,
                          const LoadOptions& options = {}) {
  const Model model = Model::load(path, options);
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

// The keys llama.cpp's phi3 needs: the window, and LongRoPE's factors, switch and scale.
TEST(ConvertHf, Phi3LongRopeKeys) {
  const fs::path dir = data_path("zoo/hf/phi3-longrope");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "phi3.gguf").string();
  convert_hf_model(dir.string(), out, {.type = "f32"});
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.require_uint("phi3.rope.scaling.original_context_length"), 32u);
  EXPECT_NEAR(*f.get_float("phi3.rope.scaling.attn_factor"), std::sqrt(2.4), 1e-6);
  ASSERT_NE(f.find_tensor("rope_factors_long.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("rope_factors_long.weight")->dims, std::vector<uint64_t>{8});
  EXPECT_EQ(f.find_tensor("blk.0.attn_qkv.weight")->dims, (std::vector<uint64_t>{64, 128}));
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->dims, (std::vector<uint64_t>{64, 320}));
  const GgufFile windowed = GgufFile::open(
      (convert_hf_model(data_path("zoo/hf/phi3").string(), out, {.type = "f32"}), out));
  EXPECT_EQ(windowed.require_uint("phi3.attention.sliding_window"), 16u);
}

// Experts stacked as llama.cpp stores them, with the keys it reads; PhiMoE refused (llama.cpp's
// phimoe graph is another model: softmax routing, RMSNorm).
TEST(ConvertHf, MixtureOfExpertsLayout) {
  const fs::path dir = data_path("zoo/hf/qwen2moe");
  SLM_REQUIRE_DATA(dir);
  const std::string out = (test::temp_dir() / "qwen2moe.gguf").string();
  convert_hf_model(dir.string(), out, {.type = "q8_0"});
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.require_uint("qwen2moe.expert_count"), 4u);
  EXPECT_EQ(f.require_uint("qwen2moe.expert_used_count"), 2u);
  EXPECT_EQ(f.require_uint("qwen2moe.expert_feed_forward_length"), 64u);
  EXPECT_EQ(f.require_uint("qwen2moe.expert_shared_feed_forward_length"), 128u);
  EXPECT_EQ(f.get_bool("qwen2moe.expert_weights_norm"), false);
  const GgufTensor* down = f.find_tensor("blk.1.ffn_down_exps.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->dims, (std::vector<uint64_t>{64, 64, 4}));
  EXPECT_EQ(down->type, DType::kQ8_0);
  EXPECT_EQ(f.find_tensor("blk.1.ffn_gate_inp.weight")->type, DType::kF32);  // routers stay F32
  EXPECT_EQ(f.find_tensor("blk.0.ffn_gate_inp_shexp.weight")->dims, std::vector<uint64_t>{64});
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.0.weight"), nullptr);
  // The stacked Q8_0 experts hold the bytes the directory quantized at load runs on.
  const std::vector<int32_t> tokens = zoo_tokens();
  const std::vector<float> a = logits(dir.string(), tokens, {.quantize = "q8_0"});
  const std::vector<float> b = logits(out, tokens);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);
  SLM_REQUIRE_DATA(data_path("zoo/hf/phimoe"));
  try {
    convert_hf_model(data_path("zoo/hf/phimoe").string(), out, {.type = "f32"});
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("sparsemixer"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ConvertZoo,
                         testing::Values(ZooCase{"llama", "llama"}, ZooCase{"qwen2", "qwen2"},
                                         ZooCase{"qwen3", "qwen3"}, ZooCase{"phi2", "phi2"},
                                         ZooCase{"starcoder2", "starcoder2"},
                                         ZooCase{"phi3", "phi3"}, ZooCase{"phi3-longrope", "phi3"},
                                         ZooCase{"mixtral", "llama"},
                                         ZooCase{"qwen2moe", "qwen2moe"},
                                         ZooCase{"qwen3moe", "qwen3moe"}, ZooCase{"gemma", "gemma"},
                                         ZooCase{"gemma3", "gemma3"}, ZooCase{"granite", "granite"},
                                         ZooCase{"olmo2", "olmo2"}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Gemma 3's linear RoPE scaling of its global layers (Gemma 3 4B and up: factor 8), which the
// zoo does not have: a copy of zoo/hf/gemma3 with it. It changes the logits (only the global
// layer rotates differently), and its GGUF gives the directory's logits.
TEST(ConvertHf, Gemma3LinearRopeScaling) {
  const fs::path zoo = data_path("zoo/hf/gemma3");
  SLM_REQUIRE_DATA(zoo);
  const fs::path tmp = test::temp_dir(), dir = tmp / "gemma3-linear";
  fs::create_directories(dir);
  fs::copy_file(zoo / "model.safetensors", dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  std::string text = test::read_text(zoo / "config.json");
  const std::string from = R"("rope_theta": 1000000.0,)";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), R"("rope_theta": 1000000.0, "factor": 8.0,)");
  const size_t type = text.find(R"("rope_type": "default")", at);
  ASSERT_NE(type, std::string::npos);
  text.replace(type, 22, R"("rope_type": "linear")");
  std::ofstream(dir / "config.json") << text;

  const std::vector<int32_t> tokens = zoo_tokens();
  const std::vector<float> plain = logits(zoo.string(), tokens),
                           scaled = logits(dir.string(), tokens);
  EXPECT_GT(test::nmse(&scaled[40 * 512], &plain[40 * 512], 512), 1e-6);
  const std::string out = (tmp / "gemma3-linear.gguf").string();
  convert_hf_model(dir.string(), out, {.type = "f32"});
  const GgufFile f = GgufFile::open(out);
  EXPECT_EQ(f.get_string("gemma3.rope.scaling.type").value_or(""), "linear");
  EXPECT_EQ(f.get_float("gemma3.rope.scaling.factor").value_or(0), 8.0);
  const std::vector<float> converted = logits(out, tokens);
  for (size_t row = 0; row < tokens.size(); ++row) {
    EXPECT_LE(test::nmse(&converted[row * 512], &scaled[row * 512], 512), 1e-12) << "row " << row;
  }
}

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
  // What llama.cpp's GGUF layout of the architecture cannot say: Mistral's window on every layer
  // (llama has none), Gemma 2's query_pre_attn_scalar 24 ≠ head_dim 32, SmolLM3's RoPE-less
  // layers every 2nd (llama.cpp's smollm3: every 4th, fixed).
  const auto expect_refused = [&](const std::string& name, const std::string& needle) {
    if (!fs::exists(data_path("zoo/hf/" + name))) return;
    try {
      convert_hf_model(data_path("zoo/hf/" + name).string(), out, {.type = "f32"});
      ADD_FAILURE() << name << " converted";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_refused("mistral-swa", "sliding-window attention");
  expect_refused("gemma2", "query_pre_attn_scalar");
  expect_refused("smollm3", "layer 1's RoPE");
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
