// Whole-model checks against llama.cpp's reference outputs in ../shared (never our own output).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/model_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;
namespace fs = std::filesystem;

struct Case {
  std::string model;      // path under the data root
  std::string reference;  // reference path prefix under the data root
  double max_nmse;        // per position, DESIGN.md "Numerics"
  bool exact_greedy;      // llama.cpp's greedy continuation must be reproduced exactly
  // Bound on the decode path's logits. For quantized files a 1e-7 difference may flip one Q8
  // activation rounding late in a long continuation (stories260K-Q4_0 matches llama.cpp to 1e-15
  // for 44 steps, then one step reaches 1.1e-3), so these get DESIGN.md's quantized bound.
  double decode_nmse = max_nmse;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model; }

std::string case_name(const testing::TestParamInfo<Case>& info) {
  std::string name = info.param.reference.substr(info.param.reference.rfind('/') + 1);
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class ReferenceModel : public testing::TestWithParam<Case> {};

// Every position's logits from one batched pass (prefill path).
TEST_P(ReferenceModel, PromptLogits) {
  const Case& c = GetParam();
  SLM_REQUIRE_DATA(data_path(c.model));
  const std::string tokens_file =
      data_path(c.reference).parent_path() / "tokens.txt";
  const std::vector<int32_t> tokens = test::read_ids(tokens_file);
  const std::vector<float> expected = test::read_f32(data_path(c.reference + ".logits.f32"));

  Model model = Model::load(data_path(c.model));
  Session session(model, {.kv_type = KvType::kF32});
  const auto logits = session.eval(tokens, /*all_logits=*/true);
  const size_t V = size_t(model.info().vocab_size);
  ASSERT_EQ(logits.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    worst = std::max(worst, test::nmse(&logits[i * V], &expected[i * V], V));
  }
  EXPECT_LE(worst, c.max_nmse);
  RecordProperty("worst_nmse", std::to_string(worst));
}

// The greedy continuation one token at a time over the KV cache (decode path).
TEST_P(ReferenceModel, GreedyDecode) {
  const Case& c = GetParam();
  SLM_REQUIRE_DATA(data_path(c.model));
  const std::vector<int32_t> tokens =
      test::read_ids(data_path(c.reference).parent_path() / "tokens.txt");
  const std::vector<int32_t> expected = test::read_ids(data_path(c.reference + ".greedy.txt"));
  const std::vector<float> expected_logits =
      test::read_f32(data_path(c.reference + ".greedy_logits.f32"));

  Model model = Model::load(data_path(c.model));
  Session session(model, {.kv_type = KvType::kF32});
  const size_t V = size_t(model.info().vocab_size);
  std::span<const float> logits = session.eval(tokens);
  std::vector<int32_t> got;
  double worst = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    worst = std::max(worst, test::nmse(logits.data(), &expected_logits[k * V], V));
    // Teacher forcing: feed the reference token so one early flip cannot hide later errors.
    got.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    logits = session.eval(std::span(&expected[k], 1));
  }
  EXPECT_LE(worst, c.decode_nmse);
  if (c.exact_greedy) {
    EXPECT_EQ(got, expected);
  }
}

constexpr double kF32 = 1e-6, kHalf = 1e-4, kQuant = 1e-3, kZooQuant = 1e-2;
const std::string kStories = "models/stories260K/", kStoriesRef = "models/stories260K/reference/";
const std::string kZoo = "zoo/gguf/";

INSTANTIATE_TEST_SUITE_P(
    Stories260K, ReferenceModel,
    testing::Values(Case{kStories + "stories260K.gguf", kStoriesRef + "stories260K", kF32, true},
                    Case{kStories + "stories260K-F16.gguf", kStoriesRef + "stories260K-F16", kHalf, true},
                    Case{kStories + "stories260K-Q8_0.gguf", kStoriesRef + "stories260K-Q8_0", kQuant, true},
                    Case{kStories + "stories260K-Q4_0.gguf", kStoriesRef + "stories260K-Q4_0", kQuant, false, kZooQuant}),
    case_name);

// The zoo's llama in every weight type it ships. Quantized files: DESIGN.md's bound (llama.cpp
// quantizes activations too, so one flipped rounding moves whole-model logits).
INSTANTIATE_TEST_SUITE_P(
    ZooLlama, ReferenceModel,
    testing::Values(Case{kZoo + "llama-gqa-F32.gguf", kZoo + "llama-gqa-F32", kF32, true},
                    Case{kZoo + "llama-gqa-F16.gguf", kZoo + "llama-gqa-F16", kHalf, true},
                    Case{kZoo + "llama-gqa-BF16.gguf", kZoo + "llama-gqa-BF16", kHalf, true},
                    Case{kZoo + "llama-gqa-Q8_0.gguf", kZoo + "llama-gqa-Q8_0", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q4_0.gguf", kZoo + "llama-gqa-Q4_0", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q4_K_M.gguf", kZoo + "llama-gqa-Q4_K_M", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q5_K_M.gguf", kZoo + "llama-gqa-Q5_K_M", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q6_K.gguf", kZoo + "llama-gqa-Q6_K", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q2_K.gguf", kZoo + "llama-gqa-Q2_K", kZooQuant, false},
                    Case{kZoo + "llama-gqa-Q3_K_M.gguf", kZoo + "llama-gqa-Q3_K_M", kZooQuant, false}),
    case_name);

// Other architectures of the zoo, F32: per-layer data the llama files do not exercise.
INSTANTIATE_TEST_SUITE_P(
    ZooArchitectures, ReferenceModel,
    // qwen2: q/k/v biases, NEOX (half-split) RoPE, tied output.
    testing::Values(Case{kZoo + "qwen2-F32.gguf", kZoo + "qwen2-F32", kF32, true},
                    // phi2: LayerNorm with biases, fused attn_qkv + bias, partial NeoX RoPE
                    // (16 of 32 dims), parallel attention + GELU MLP, attn_output and output
                    // biases. GELU: llama.cpp's fp16 table bounds the match (DESIGN.md).
                    Case{kZoo + "phi2-F32.gguf", kZoo + "phi2-F32", kHalf, true},
                    // phi3: fused attn_qkv and gate/up (ffn_up = [gate; up]), GQA, sliding
                    // window 12 on every layer over 48 positions.
                    Case{kZoo + "phi3-F32.gguf", kZoo + "phi3-F32", kF32, true},
                    // starcoder2: LayerNorm with biases, q/k/v/o biases, GELU MLP with biases.
                    Case{kZoo + "starcoder2-F32.gguf", kZoo + "starcoder2-F32", kHalf, true},
                    // Mixture of experts: llama with 4 experts, top-2 renormalised (Mixtral);
                    // qwen2moe with 8 experts, top-2 not renormalised, and a sigmoid-gated
                    // shared expert.
                    Case{kZoo + "llama-moe-F32.gguf", kZoo + "llama-moe-F32", kF32, true},
                    Case{kZoo + "qwen2moe-F32.gguf", kZoo + "qwen2moe-F32", kF32, true},
                    // phimoe as llama.cpp computes it: RMSNorm plus bias, q/k/v/o and output
                    // biases, softmax top-2 of 4 experts, renormalised.
                    Case{kZoo + "phimoe-F32.gguf", kZoo + "phimoe-F32", kF32, true},
                    // gemma: embeddings · √E, GeGLU, MQA, head_dim ≠ E/H, tied output. gemma2:
                    // plus post-norms, attention and final soft-caps, sliding window on even
                    // layers. llama.cpp's GELU goes through an fp16 table: DESIGN.md's GELU bound.
                    Case{kZoo + "gemma-F32.gguf", kZoo + "gemma-F32", kHalf, true},
                    Case{kZoo + "gemma2-F32.gguf", kZoo + "gemma2-F32", kHalf, true}),
    case_name);

std::vector<int32_t> greedy_ids(const Model& model, int threads, int n) {
  Session session(model, {.threads = threads, .kv_type = KvType::kF32});
  const std::vector<int32_t> prompt = model.tokenizer().encode("Once upon a time");
  GenerateOptions options;
  options.max_tokens = n;
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  return generate(session, prompt, options).tokens;
}

// The library API end to end: text prompt → tokenizer → generate, on the bundled model.
TEST(ModelApi, BundledModelGreedyMatchesLlamaCpp) {
  SLM_REQUIRE_DATA(data_path(kStoriesRef + "stories260K.greedy.txt"));
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  EXPECT_EQ(model.tokenizer().encode("Once upon a time"),
            test::read_ids(data_path(kStoriesRef + "tokens.txt")));
  EXPECT_EQ(greedy_ids(model, 0, 64), test::read_ids(data_path(kStoriesRef + "stories260K.greedy.txt")));
}

TEST(ModelApi, ThreadCountDoesNotChangeOutput) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<int32_t> one = greedy_ids(model, 1, 32);
  EXPECT_EQ(greedy_ids(model, 2, 32), one);
  EXPECT_EQ(greedy_ids(model, 3, 32), one);
  // Logits are bit-identical, not just close.
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  Session a(model, {.threads = 1}), b(model, {.threads = 3});
  const auto la = a.eval(prompt, true);
  const std::vector<float> copy(la.begin(), la.end());
  const auto lb = b.eval(prompt, true);
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), lb.begin(), lb.end()));
}

TEST(ModelApi, PrefillEqualsTokenByToken) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383};
  Session batch(model, {.kv_type = KvType::kF32}), step(model, {.kv_type = KvType::kF32});
  const auto all = batch.eval(prompt, true);
  const std::vector<float> rows(all.begin(), all.end());
  const size_t V = size_t(model.info().vocab_size);
  for (size_t i = 0; i < prompt.size(); ++i) {
    const auto one = step.eval(std::span(&prompt[i], 1));
    EXPECT_LE(test::nmse(one.data(), &rows[i * V], V), 1e-10) << "position " << i;
  }
}

TEST(ModelApi, RejectsBadTokensAndOverlongPrompts) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  Session session(model, {.context_length = 4});
  const std::vector<int32_t> bad = {1, 512};
  EXPECT_THROW(session.eval(bad), InvalidArgumentError);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(session.eval(negative), InvalidArgumentError);
  const std::vector<int32_t> too_long = {1, 2, 3, 4, 5};
  try {
    session.eval(too_long);
    FAIL() << "expected an error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  EXPECT_EQ(session.position(), 0);  // nothing was evaluated
  EXPECT_THROW(session.eval(std::span<const int32_t>()), InvalidArgumentError);
  EXPECT_THROW(Session(model, {.context_length = 1 << 30}), InvalidArgumentError);
}

TEST(ModelApi, F16CacheStaysClose) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  Session f32(model, {.kv_type = KvType::kF32}), f16(model, {.kv_type = KvType::kF16});
  const auto a = f32.eval(prompt, true);
  const std::vector<float> copy(a.begin(), a.end());
  const auto b = f16.eval(prompt, true);
  EXPECT_LE(test::nmse(b.data(), copy.data(), copy.size()), 1e-4);
}

TEST(ModelApi, UnsupportedArchitectureNamesWhatIsSupported) {
  SLM_REQUIRE_DATA(data_path(kZoo + "llama-moe-F32.gguf"));
  // A file of an architecture slm has no table row for.
  GgufWriter out;
  out.set_string("general.architecture", "mamba");
  out.set_u32("mamba.embedding_length", 128);
  const fs::path path = test::temp_dir() / "mamba.gguf";
  out.write(path.string());
  try {
    Model::load(path.string());
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    for (const char* name : {"mamba", "llama", "qwen2", "qwen3", "phi2", "phi3", "starcoder2", "qwen2moe"}) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

// A copy of a zoo GGUF without the tensor `drop`, plus `extra` f32 vectors.
fs::path edited_zoo_copy(
    const std::string& name, const std::string& drop,
    const std::vector<std::pair<std::string, std::vector<float>>>& extra = {}) {
  const GgufFile in = GgufFile::open(data_path(kZoo + name + ".gguf"));
  GgufWriter out;
  for (const GgufKv& kv : in.metadata()) out.set(kv.key, GgufMetaValue::from(kv.value));
  for (const GgufTensor& t : in.tensors()) {
    if (t.name == drop) continue;
    size_t bytes = row_bytes(t.type, size_t(t.dims[0]));
    for (size_t d = 1; d < t.dims.size(); ++d) bytes *= size_t(t.dims[d]);
    out.add_tensor(t.name, t.dims, t.type, {static_cast<const uint8_t*>(t.data), bytes});
  }
  for (const auto& [tensor, values] : extra) {
    out.add_tensor(tensor, {values.size()}, DType::kF32,
                   {reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4});
  }
  const fs::path path = test::temp_dir() / (name + ".gguf");
  out.write(path.string());
  return path;
}

using test::expect_load_error;

TEST(ModelApi, PhiFilesWithMissingOrBadTensors) {
  SLM_REQUIRE_DATA(data_path(kZoo + "phi3-F32.gguf"));
  // Neither the fused q/k/v nor separate ones: both names are given.
  expect_load_error<FormatError>(edited_zoo_copy("phi2-F32", "blk.1.attn_qkv.weight"),
                                 {"blk.1.attn_q.weight", "blk.1.attn_qkv.weight"});
  expect_load_error<FormatError>(edited_zoo_copy("phi2-F32", "output.bias"), {"'output.bias'"});
  // LongRoPE factors: n_rot / 2 = 16 f32 values each, and the long ones need the short ones.
  const std::vector<float> ones(16, 1.0f), three(3, 1.0f);
  expect_load_error<FormatError>(
      edited_zoo_copy("phi3-F32", "",
                      {{"rope_factors_short.weight", ones}, {"rope_factors_long.weight", three}}),
      {"rope_factors_long.weight", "[16]"});
  expect_load_error<FormatError>(
      edited_zoo_copy("phi3-F32", "", {{"rope_factors_long.weight", ones}}),
      {"rope_factors_short.weight"});
  // Factors of 1 (and no attention factor) leave the model as it was.
  const Model model = Model::load(
      edited_zoo_copy("phi3-F32", "",
                      {{"rope_factors_short.weight", ones}, {"rope_factors_long.weight", ones}})
          .string());
  Session session(model, {.kv_type = KvType::kF32});
  const std::vector<int32_t> tokens = test::read_ids(data_path(kZoo + "tokens.txt"));
  const auto logits = session.eval(tokens, true);
  const std::vector<float> expected = test::read_f32(data_path(kZoo + "phi3-F32.logits.f32"));
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_LE(test::nmse(&logits[i * 512], &expected[i * 512], 512), kF32) << i;
  }
}

TEST(ModelApi, MissingFileIsAnIoError) {
  EXPECT_THROW(Model::load("/nonexistent/model.gguf"), IoError);
}

}  // namespace
}  // namespace slm
