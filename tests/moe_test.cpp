// Mixture-of-experts specifics beyond the zoo's reference logits (model_test.cpp,
// hf_model_test.cpp): experts stored one tensor each in GGUF, expert tensor names, load-time
// quantization of experts, and clear errors for broken MoE files and configs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "src/model/hf_names.h"
#include "tests/safetensors_test_util.h"
#include "tests/model_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

const std::string kLlamaMoe = "zoo/gguf/llama-moe-F32";

// Copies a GGUF file, letting `edit_tensor` replace a tensor by others (return false to drop
// it) and `edit_meta` change the metadata.
fs::path rewrite_gguf(const fs::path& from, const std::string& name,
                      const std::function<bool(const GgufTensor&, GgufWriter&)>& edit_tensor,
                      const std::function<void(GgufWriter&)>& edit_meta = {}) {
  const GgufFile file = GgufFile::open(from.string());
  GgufWriter out;
  for (const GgufKv& kv : file.metadata()) out.set(kv.key, GgufMetaValue::from(kv.value));
  if (edit_meta) edit_meta(out);
  for (const GgufTensor& t : file.tensors()) {
    if (edit_tensor(t, out)) out.add_tensor(t.name, t.dims, t.type, {t.data, t.n_bytes});
  }
  const fs::path path = test::temp_dir() / name;
  out.write(path.string());
  return path;
}

double worst_nmse(const Model& model, const std::string& reference) {
  const std::vector<int32_t> tokens = test::read_ids(data_path("zoo/gguf/tokens.txt"));
  const std::vector<float> expected = test::read_f32(data_path(reference + ".logits.f32"));
  Session session(model, {.kv_type = KvType::kF32});
  const auto logits = session.eval(tokens, /*all_logits=*/true);
  const size_t V = size_t(model.info().vocab_size);
  EXPECT_EQ(logits.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < tokens.size() && (i + 1) * V <= logits.size(); ++i) {
    worst = std::max(worst, test::nmse(&logits[i * V], &expected[i * V], V));
  }
  return worst;
}

using test::expect_load_error;

// Old GGUF files (and Hugging Face checkpoints) hold one tensor per expert,
// `blk.L.ffn_gate.E.weight`: splitting the stacked tensors gives the same model.
TEST(Moe, PerExpertGgufTensorsMatchStacked) {
  SLM_REQUIRE_DATA(data_path(kLlamaMoe + ".gguf"));
  const fs::path path = rewrite_gguf(
      data_path(kLlamaMoe + ".gguf"), "per_expert.gguf", [](const GgufTensor& t, GgufWriter& out) {
        const size_t at = t.name.find("_exps.weight");
        if (at == std::string::npos) return true;
        const uint64_t n_expert = t.dims[2], bytes = t.n_bytes / n_expert;
        for (uint64_t e = 0; e < n_expert; ++e) {
          out.add_tensor(t.name.substr(0, at) + "." + std::to_string(e) + ".weight",
                         {t.dims[0], t.dims[1]}, t.type, {t.data + e * bytes, bytes});
        }
        return false;
      });
  const Model model = Model::load(path);
  EXPECT_LE(worst_nmse(model, kLlamaMoe), 1e-6);
}

// Experts quantized at load run as Q8_0 (each expert a matrix of its own); the router stays F32.
TEST(Moe, ExpertsQuantizedAtLoad) {
  SLM_REQUIRE_DATA(data_path(kLlamaMoe + ".gguf"));
  const Model model = Model::load(data_path(kLlamaMoe + ".gguf"), {.quantize = "q8_0"});
  EXPECT_NE(model.info().weight_types.find("q8_0"), std::string::npos) << model.info().weight_types;
  EXPECT_LE(worst_nmse(model, kLlamaMoe), 1e-2);  // DESIGN.md's quantized bound
}

TEST(Moe, HfExpertNames) {
  EXPECT_EQ(hf_tensor_name("llama", "blk.3.ffn_gate.7.weight"),
            "model.layers.3.block_sparse_moe.experts.7.w1.weight");
  EXPECT_EQ(hf_tensor_name("llama", "blk.0.ffn_down.12.weight"),
            "model.layers.0.block_sparse_moe.experts.12.w2.weight");
  EXPECT_EQ(hf_tensor_name("qwen2moe", "blk.11.ffn_up.2.weight"),
            "model.layers.11.mlp.experts.2.up_proj.weight");
  EXPECT_EQ(hf_tensor_name("qwen2moe", "blk.1.ffn_gate_inp_shexp.weight"),
            "model.layers.1.mlp.shared_expert_gate.weight");
  EXPECT_EQ(hf_tensor_name("qwen3moe", "blk.1.ffn_gate_inp.weight"),
            "model.layers.1.mlp.gate.weight");
  EXPECT_EQ(hf_tensor_name("llama", "blk.2.ffn_gate.weight"),
            "model.layers.2.mlp.gate_proj.weight");
}

TEST(MoeMalformed, GgufMissingExpertTensor) {
  SLM_REQUIRE_DATA(data_path(kLlamaMoe + ".gguf"));
  const fs::path path = rewrite_gguf(
      data_path(kLlamaMoe + ".gguf"), "no_up.gguf",
      [](const GgufTensor& t, GgufWriter&) { return t.name != "blk.1.ffn_up_exps.weight"; });
  expect_load_error<FormatError>(path, {"missing tensor", "blk.1.ffn_up", "ffn_up_exps"});
}

TEST(MoeMalformed, GgufWrongExpertShape) {
  SLM_REQUIRE_DATA(data_path(kLlamaMoe + ".gguf"));
  const fs::path path = rewrite_gguf(
      data_path(kLlamaMoe + ".gguf"), "three_experts.gguf",
      [](const GgufTensor& t, GgufWriter& out) {
        if (t.name != "blk.0.ffn_down_exps.weight") return true;
        out.add_tensor(t.name, {t.dims[0], t.dims[1], 3}, t.type, {t.data, t.n_bytes / 4 * 3});
        return false;
      });
  expect_load_error<FormatError>(path,
                                 {"blk.0.ffn_down_exps.weight", "[256, 128, 3]", "[256, 128, 4]"});
}

TEST(MoeMalformed, GgufMoreExpertsUsedThanExist) {
  SLM_REQUIRE_DATA(data_path(kLlamaMoe + ".gguf"));
  const fs::path path = rewrite_gguf(
      data_path(kLlamaMoe + ".gguf"), "used5.gguf",
      [](const GgufTensor&, GgufWriter&) { return true; },
      [](GgufWriter& w) { w.set_u32("llama.expert_used_count", 5); });
  expect_load_error<FormatError>(path, {"expert_used_count 5", "expert_count 4"});
}

TEST(MoeMalformed, HfConfigs) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/qwen2moe"));
  expect_load_error<FormatError>(
      test::hf_zoo_copy("qwen2moe", "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 6"),
      {"num_experts_per_tok", "6", "num_experts"});
  expect_load_error<UnsupportedError>(
      test::hf_zoo_copy("qwen2moe", "\"mlp_only_layers\": []", "\"mlp_only_layers\": [1]"),
      {"mlp_only_layers"});
  expect_load_error<UnsupportedError>(
      test::hf_zoo_copy("qwen2moe", "\"decoder_sparse_step\": 1", "\"decoder_sparse_step\": 2"),
      {"decoder_sparse_step"});
  SLM_REQUIRE_DATA(data_path("zoo/hf/phimoe"));
  expect_load_error<UnsupportedError>(
      test::hf_zoo_copy("phimoe", "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 3"),
      {"num_experts_per_tok = 3", "sparsemixer"});
  expect_load_error<FormatError>(
      test::hf_zoo_copy("phimoe", "\"router_jitter_noise\": 0.01", "\"router_jitter_noise\": -1"),
      {"router_jitter_noise"});
  // Five experts configured, four stored: the router's shape says so.
  expect_load_error<FormatError>(
      test::hf_zoo_copy("mixtral", "\"num_local_experts\": 4", "\"num_local_experts\": 5"),
      {"model.layers.0.block_sparse_moe.gate.weight", "[4, 64]", "[5, 64]"});
}

// An expert missing from a Hugging Face checkpoint is named as transformers names it.
TEST(MoeMalformed, HfMissingExpert) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/mixtral"));
  const fs::path dir =
      test::hf_zoo_copy("mixtral", "\"num_local_experts\": 4", "\"num_local_experts\": 4");
  std::vector<test::StTensor> tensors = test::read_safetensors(dir / "model.safetensors");
  std::erase_if(tensors, [](const test::StTensor& t) {
    return t.name == "model.layers.1.block_sparse_moe.experts.2.w2.weight";
  });
  test::write_safetensors(dir / "model.safetensors", tensors);
  expect_load_error<FormatError>(
      dir, {"missing tensor", "model.layers.1.block_sparse_moe.experts.2.w2.weight"});
}

}  // namespace
}  // namespace slm
