// Hugging Face directories run end to end: stories260K's hf-f32 / hf-bf16 against llama.cpp's
// references of the same weights, the zoo's llama against transformers' (float64) logits, and
// models without a tokenizer. HfModelMalformed.* (broken directories) runs under ASan in CI.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "src/format/safetensors.h"
#include "tests/safetensors_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

constexpr double kF32 = 1e-6, kHalf = 1e-4;  // DESIGN.md "Numerics"

std::vector<int32_t> json_ids(const fs::path& path) {
  simdjson::dom::parser parser;
  std::vector<int32_t> out;
  for (const int64_t id : parser.load(path.string()).get_array()) out.push_back(int32_t(id));
  return out;
}

double worst_nmse(std::span<const float> got, const std::vector<float>& expected, size_t vocab) {
  double worst = 0;
  for (size_t i = 0; i < expected.size() / vocab; ++i) {
    worst = std::max(worst, test::nmse(&got[i * vocab], &expected[i * vocab], vocab));
  }
  return worst;
}

std::vector<TokenId> greedy(const Model& model, const std::vector<int32_t>& prompt, int n) {
  Session session(model, {.kv_type = KvType::kF32});
  GenerateOptions options;
  options.max_tokens = n;
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  return generate(session, prompt, options).tokens;
}

struct Case {
  std::string dir;     // under the data root
  std::string logits;  // reference logits under the data root
  std::string tokens;  // prompt ids: tokens.txt (whitespace) or tokens.json
  std::string greedy;  // reference greedy ids: *.txt or *.json
  double max_nmse;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.dir; }

std::vector<int32_t> read_any_ids(const fs::path& path) {
  return path.extension() == ".json" ? json_ids(path) : test::read_ids(path);
}

class HfReference : public testing::TestWithParam<Case> {};

TEST_P(HfReference, PromptLogitsAndGreedy) {
  const Case& c = GetParam();
  SLM_REQUIRE_DATA(data_path(c.dir));
  const std::vector<int32_t> tokens = read_any_ids(data_path(c.tokens));
  const std::vector<float> expected = test::read_f32(data_path(c.logits));
  const Model model = Model::load(data_path(c.dir));
  EXPECT_FALSE(model.has_tokenizer());  // none of these ship a tokenizer.json
  Session session(model, {.kv_type = KvType::kF32});
  const auto logits = session.eval(tokens, /*all_logits=*/true);
  ASSERT_EQ(logits.size(), expected.size());
  const double worst = worst_nmse(logits, expected, size_t(model.info().vocab_size));
  EXPECT_LE(worst, c.max_nmse);
  RecordProperty("worst_nmse", fmt::format("{:.3g}", worst));

  const std::vector<int32_t> expected_ids = read_any_ids(data_path(c.greedy));
  EXPECT_EQ(greedy(model, tokens, int(expected_ids.size())), expected_ids);
}

const std::string kStories = "models/stories260K/", kRef = "models/stories260K/reference/";

INSTANTIATE_TEST_SUITE_P(
    Models, HfReference,
    testing::Values(
        // The same weights as stories260K.gguf: llama.cpp's F32 references hold.
        Case{kStories + "hf-f32", kRef + "stories260K.logits.f32", kRef + "tokens.txt",
             kRef + "stories260K.greedy.txt", kF32},
        Case{kStories + "hf-bf16", kRef + "stories260K.logits.f32", kRef + "tokens.txt",
             kRef + "stories260K.greedy.txt", kHalf},
        // transformers' float64 logits of the F32 and BF16 weights.
        Case{"zoo/hf/llama", "zoo/hf/llama/logits.f32", "zoo/hf/tokens.json",
             "zoo/hf/llama/greedy.json", kF32},
        Case{"zoo/hf/llama/bf16", "zoo/hf/llama/logits_bf16.f32", "zoo/hf/tokens.json",
             "zoo/hf/llama/greedy.json", kHalf},
        // Llama 3 RoPE frequency scaling (rope_parameters.rope_type = llama3), tied output.
        Case{"zoo/hf/llama3-rope", "zoo/hf/llama3-rope/logits.f32", "zoo/hf/tokens.json",
             "zoo/hf/llama3-rope/greedy.json", kF32},
        Case{"zoo/hf/llama3-rope/bf16", "zoo/hf/llama3-rope/logits_bf16.f32", "zoo/hf/tokens.json",
             "zoo/hf/llama3-rope/greedy.json", kHalf},
        // Qwen2: q/k/v biases, tied output.
        Case{"zoo/hf/qwen2", "zoo/hf/qwen2/logits.f32", "zoo/hf/tokens.json",
             "zoo/hf/qwen2/greedy.json", kF32},
        Case{"zoo/hf/qwen2/bf16", "zoo/hf/qwen2/logits_bf16.f32", "zoo/hf/tokens.json",
             "zoo/hf/qwen2/greedy.json", kHalf},
        // Qwen3: per-head q/k RMSNorm, head_dim 32 ≠ hidden_size / heads.
        // Mistral: sliding window 16 on every layer, 64 tokens (positions ≥ 16 lose keys).
        Case{"zoo/hf/mistral-swa", "zoo/hf/mistral-swa/logits.f32", "zoo/hf/tokens.json",
             "zoo/hf/mistral-swa/greedy.json", kF32},
        Case{"zoo/hf/mistral-swa/bf16", "zoo/hf/mistral-swa/logits_bf16.f32", "zoo/hf/tokens.json",
             "zoo/hf/mistral-swa/greedy.json", kHalf},
        Case{"zoo/hf/qwen3", "zoo/hf/qwen3/logits.f32", "zoo/hf/tokens.json",
             "zoo/hf/qwen3/greedy.json", kF32},
        // BF16 weights multiply F32 activations, as transformers does (rounding the activations
        // to BF16 too, as ggml does, gave qwen3 1.1e-4).
        Case{"zoo/hf/qwen3/bf16", "zoo/hf/qwen3/logits_bf16.f32", "zoo/hf/tokens.json",
             "zoo/hf/qwen3/greedy.json", kHalf}),
    [](const testing::TestParamInfo<Case>& info) {
      std::string name = info.param.dir.substr(info.param.dir.find('/') + 1);
      for (char& ch : name) {
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(HfModel, SameLogitsAsTheGgufFile) {
  const fs::path dir = data_path(kStories + "hf-f32");
  SLM_REQUIRE_DATA(dir);
  const std::vector<int32_t> tokens = test::read_ids(data_path(kRef + "tokens.txt"));
  const Model hf = Model::load(dir);
  const Model gguf = Model::load(data_path(kStories + "stories260K.gguf"));
  Session a(hf, {.kv_type = KvType::kF32}), b(gguf, {.kv_type = KvType::kF32});
  const auto la = a.eval(tokens, true);
  const auto lb_span = b.eval(tokens, true);
  EXPECT_LE(worst_nmse(la, std::vector<float>(lb_span.begin(), lb_span.end()), 512), kF32);
  EXPECT_EQ(hf.info().architecture, "llama");
  EXPECT_EQ(hf.info().block_count, 5);
  EXPECT_EQ(hf.info().weight_types, "f32 x47");
}

// The zoo has no qwen3 GGUF: write one from zoo/hf/qwen3's F32 tensors under llama.cpp's names
// and keys (q/k rows as stored: qwen3 uses NEOX RoPE, so its converter permutes nothing), with
// stories260K's 512-token vocabulary, and check it against transformers' logits.
TEST(HfModel, Qwen3AsGgufMatchesTransformers) {
  const fs::path dir = data_path("zoo/hf/qwen3");
  SLM_REQUIRE_DATA(dir);
  const GgufFile vocab = GgufFile::open(data_path(kStories + "stories260K.gguf").string());
  GgufWriter out;
  for (const GgufKv& kv : vocab.metadata()) {
    if (kv.key.starts_with("tokenizer.")) out.set(kv.key, GgufMetaValue::from(kv.value));
  }
  out.set_string("general.architecture", "qwen3");
  out.set_u32("qwen3.embedding_length", 64);
  out.set_u32("qwen3.block_count", 2);
  out.set_u32("qwen3.attention.head_count", 4);
  out.set_u32("qwen3.attention.head_count_kv", 2);
  out.set_u32("qwen3.attention.key_length", 32);
  out.set_u32("qwen3.attention.value_length", 32);
  out.set_u32("qwen3.feed_forward_length", 160);
  out.set_u32("qwen3.context_length", 512);
  out.set_f32("qwen3.rope.freq_base", 1e6f);
  out.set_f32("qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
  const std::pair<std::string, std::string> renames[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  const SafetensorsCheckpoint hf = SafetensorsCheckpoint::open(dir.string());
  for (const SafetensorsFile& file : hf.files()) {
    for (const SafetensorsTensor& t : file.tensors()) {
      if (t.name == "lm_head.weight") continue;  // tied
      std::string name = t.name;
      const size_t layer_end = name.starts_with("model.layers.") ? name.find('.', 13) + 1 : 0;
      std::string prefix = layer_end ? "blk." + name.substr(13, layer_end - 13) : "";
      for (const auto& [from, to] : renames) {
        if (name.substr(layer_end) == from) name = prefix + to;
      }
      ASSERT_NE(name, t.name) << "unmapped tensor";
      out.add_tensor(name, std::vector<uint64_t>(t.shape.rbegin(), t.shape.rend()), DType::kF32,
                     {t.data, t.n_bytes});
    }
  }
  const fs::path path = test::temp_dir() / "qwen3.gguf";
  out.write(path.string());

  const Model model = Model::load(path);
  EXPECT_EQ(model.info().architecture, "qwen3");
  const std::vector<int32_t> tokens = json_ids(data_path("zoo/hf/tokens.json"));
  Session session(model, {.kv_type = KvType::kF32});
  const auto logits = session.eval(tokens, /*all_logits=*/true);
  const std::vector<float> expected = test::read_f32(dir / "logits.f32");
  ASSERT_EQ(logits.size(), expected.size());
  EXPECT_LE(worst_nmse(logits, expected, 512), kF32);
  EXPECT_EQ(greedy(model, tokens, 16), json_ids(dir / "greedy.json"));
}

TEST(HfModel, NoTokenizerRunsOnIds) {
  const fs::path dir = data_path("zoo/hf/llama");
  SLM_REQUIRE_DATA(dir);
  const Model model = Model::load(dir);
  ASSERT_FALSE(model.has_tokenizer());
  try {
    model.tokenizer();
    FAIL() << "expected InvalidArgumentError";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(model.is_eog(2));  // config.json's eos_token_id
  EXPECT_FALSE(model.is_eog(3));
  // Streaming callbacks still come, with empty text.
  Session session(model);
  GenerateOptions options;
  options.max_tokens = 4;
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  int calls = 0;
  options.on_token = [&](std::string_view piece, TokenId) {
    EXPECT_TRUE(piece.empty());
    ++calls;
    return true;
  };
  EXPECT_EQ(generate(session, std::vector<TokenId>{1, 5, 9}, options).tokens.size(), 4u);
  EXPECT_EQ(calls, 4);
}

TEST(HfModel, GivenTokenizerIsUsed) {
  const fs::path dir = data_path(kStories + "hf-f32");
  SLM_REQUIRE_DATA(dir);
  const Model model =
      Model::load(dir, {}, Tokenizer::from_file(data_path(kStories + "stories260K.gguf")));
  ASSERT_TRUE(model.has_tokenizer());
  EXPECT_EQ(model.tokenizer().encode("Once upon a time"),
            test::read_ids(data_path(kRef + "tokens.txt")));
}

// A copy of the zoo's llama directory (config.json + model.safetensors) to break.
fs::path zoo_llama_copy() {
  const fs::path dir = test::temp_dir() / "llama";
  fs::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(data_path("zoo/hf/llama") / name, dir / name);
  }
  return dir;
}

template <class E>
void expect_load_error(const fs::path& dir, const std::vector<std::string>& needles) {
  try {
    Model::load(dir.string());
    FAIL() << "expected an error mentioning '" << needles.front() << "'";
  } catch (const E& e) {
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(HfModel, TokenizerJsonInTheDirectoryIsLoaded) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  SLM_REQUIRE_DATA(data_path("tokenizer/hf/llama2/tokenizer.json"));
  const fs::path dir = zoo_llama_copy();
  fs::copy_file(data_path("tokenizer/hf/llama2/tokenizer.json"), dir / "tokenizer.json");
  // Llama 2's 32000 tokens do not fit the zoo model's 512 embeddings: proof it was read.
  expect_load_error<FormatError>(dir, {"32000 tokens"});
}

// Rewrites the copy's model.safetensors with `edit` applied to its tensor list.
void edit_tensors(const fs::path& dir,
                  const std::function<void(std::vector<test::StTensor>&)>& edit) {
  std::vector<test::StTensor> tensors = test::read_safetensors(dir / "model.safetensors");
  edit(tensors);
  test::write_safetensors(dir / "model.safetensors", tensors);
}

// safetensors does not promise aligned data: tensors at odd offsets are copied, same logits.
TEST(HfModel, MisalignedTensorsAreCopied) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = zoo_llama_copy();
  test::write_safetensors(dir / "model.safetensors",
                          test::read_safetensors(dir / "model.safetensors"), "", /*misalign=*/2);
  const std::vector<int32_t> tokens = json_ids(data_path("zoo/hf/tokens.json"));
  const Model model = Model::load(dir.string());
  Session session(model, {.kv_type = KvType::kF32});
  const auto logits = session.eval(tokens, true);
  const std::vector<float> expected = test::read_f32(data_path("zoo/hf/llama/logits.f32"));
  EXPECT_LE(worst_nmse(logits, expected, 512), kF32);
}

TEST(HfModelMalformed, MissingTensor) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = zoo_llama_copy();
  edit_tensors(dir, [](auto& t) {
    std::erase_if(t, [](const test::StTensor& x) { return x.name == "lm_head.weight"; });
  });
  expect_load_error<FormatError>(dir, {"missing tensor", "lm_head.weight"});
}

TEST(HfModelMalformed, WrongShape) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = zoo_llama_copy();
  edit_tensors(dir, [](auto& tensors) {
    for (test::StTensor& t : tensors) {
      if (t.name == "model.layers.1.self_attn.k_proj.weight") std::swap(t.shape[0], t.shape[1]);
    }
  });
  expect_load_error<FormatError>(dir, {"model.layers.1.self_attn.k_proj.weight", "[64, 32]"});
}

TEST(HfModelMalformed, UncomputableDtype) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = zoo_llama_copy();
  edit_tensors(dir, [](auto& tensors) {
    for (test::StTensor& t : tensors) {
      if (t.name == "model.layers.0.mlp.up_proj.weight") {
        t.dtype = "U8";
        t.shape.back() *= 4;  // the same bytes as U8
      }
    }
  });
  expect_load_error<UnsupportedError>(dir, {"model.layers.0.mlp.up_proj.weight", "U8"});
}

TEST(HfModelMalformed, BadConfigOrMissingFiles) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = zoo_llama_copy();
  std::ofstream(dir / "config.json") << "{\"architectures\": [\"LlamaForCausalLM\"]}";
  expect_load_error<FormatError>(dir, {"config.json", "'hidden_size'"});
  fs::remove(dir / "config.json");
  expect_load_error<IoError>(dir, {"config.json"});
  fs::copy_file(data_path("zoo/hf/llama/config.json"), dir / "config.json");
  fs::remove(dir / "model.safetensors");
  expect_load_error<FormatError>(dir, {"model.safetensors"});
}

TEST(HfModelMalformed, UnsupportedZooModels) {
  SLM_REQUIRE_DATA(data_path("zoo/hf"));
  expect_load_error<UnsupportedError>(
      data_path("zoo/hf/gemma"),
      {"GemmaForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"});
}

}  // namespace
}  // namespace slm
