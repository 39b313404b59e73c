// Weights repacked at load for the kernel set's tiles (ModelInfo::weight_bytes_repacked): a model
// read into memory, whose matrices the set rewrites, gives bit for bit the logits of the same
// file mapped (use_mmap), whose pages keep the file's rows, in prefill and decode, on 1 and 2
// threads. The rows path is itself checked against llama.cpp's references (model_test.cpp).
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dispatch.h"
#include "slm/slm.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

// The logits of a prompt (every position) then of 4 decode steps, one after another.
std::vector<float> prompt_and_decode_logits(const Model& model, int threads) {
  Session session(model, {.threads = threads});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 20, 77};
  const auto all = session.eval(prompt, /*all_logits=*/true);
  std::vector<float> out(all.begin(), all.end());
  for (int32_t id : {5, 300, 42, 7}) {
    const auto step = session.eval(std::span(&id, 1));
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

// A type's name in the zoo's file names (upper) or slm quantize's type names (lower).
std::string with_case(std::string_view s, bool upper) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    c = char(upper ? std::toupper(u) : std::tolower(u));
  }
  return out;
}

LoadOptions mapped() {
  LoadOptions o;
  o.use_mmap = true;
  return o;
}

bool repacks(DType type) {
  return active_kernels().repacked[static_cast<size_t>(type)].repack != nullptr;
}

// n_embd 256 and n_ff 768: every matrix holds whole groups of 8 blocks, w_down also a remainder.
const std::string kLlamaGqa = "zoo/gguf/llama-gqa-";

class RepackedModel : public testing::TestWithParam<DType> {};
// The types LoadOptions::quantize converts to that are repacked.
class RepackedAtLoad : public testing::TestWithParam<DType> {};

// llama-gqa as `type`: the zoo's file, or (the zoo has no Q5_0 file) `slm quantize`'s.
std::string llama_gqa(DType type) {
  const std::string zoo =
      data_path(kLlamaGqa + with_case(dtype_name(type), true) + ".gguf").string();
  const std::string f32 = data_path(kLlamaGqa + "F32.gguf").string();
  if (type != DType::kQ5_0 || !std::filesystem::exists(f32)) return zoo;  // the caller skips
  const std::string out = (test::temp_dir() / "llama-gqa-q5_0.gguf").string();
  quantize_model_file(f32, out, {.type = "q5_0"});
  return out;
}

TEST_P(RepackedModel, LogitsEqualTheFilesRowsBitForBit) {
  const DType type = GetParam();
  const std::string path = llama_gqa(type);
  SLM_REQUIRE_DATA(path);
  const Model repacked = Model::load(path);
  const Model rows = Model::load(path, mapped());
  EXPECT_EQ(rows.info().weight_bytes_repacked, 0u) << "a mapping of the file is never written";
  if (!repacks(type)) {
    EXPECT_EQ(repacked.info().weight_bytes_repacked, 0u);
    GTEST_SKIP() << active_isa_name() << " repacks no " << dtype_name(type) << " weights";
  }
  // All 14 layer matrices and the output; token_embd stays rows (looked up by row).
  const ModelInfo& info = repacked.info();
  const uint64_t embd_bytes = uint64_t(info.vocab_size) * row_bytes(type, 256);
  const uint64_t norm_bytes = 5 * 256 * sizeof(float);
  EXPECT_EQ(info.weight_bytes_repacked, info.weight_bytes - embd_bytes - norm_bytes);
  for (int threads : {1, 2}) {
    EXPECT_EQ(prompt_and_decode_logits(repacked, threads), prompt_and_decode_logits(rows, threads))
        << "threads " << threads;
  }
}

// Matrices quantized at load (LoadOptions::quantize) are this process's own memory: repacked even
// under use_mmap, and the same logits as the rows of the file `slm quantize` writes.
TEST_P(RepackedAtLoad, QuantizedAtLoadEqualsTheQuantizedFilesRows) {
  const std::string type = with_case(dtype_name(GetParam()), false);
  const std::string f32 = data_path(kLlamaGqa + "F32.gguf").string();
  SLM_REQUIRE_DATA(f32);
  const std::string quantized = (test::temp_dir() / ("repack-" + type + ".gguf")).string();
  quantize_model_file(f32, quantized, {.type = type});
  LoadOptions at_load = mapped();
  at_load.quantize = type;
  const Model repacked = Model::load(f32, at_load);
  const Model rows = Model::load(quantized, mapped());
  EXPECT_EQ(repacked.info().weight_bytes_repacked > 0, repacks(GetParam()));
  EXPECT_EQ(prompt_and_decode_logits(repacked, 2), prompt_and_decode_logits(rows, 2));
}

// Tied embeddings (SmolLM2's shapes: 576 = 2 groups of 8 blocks and 2 more; 600 tokens): the
// output's repacking covers token_embd, whose lookups read rows back from the repacked runs. A
// state saved by one load is taken by the other (the model fingerprint is of the file's bytes).
TEST_P(RepackedModel, TiedEmbeddingsEqualTheFilesRows) {
  const std::string path = (test::temp_dir() / "tied.gguf").string();
  const std::string type(dtype_name(GetParam()));
  synthesize(path, {.preset = "smollm2-135m", .type = type, .seed = 3, .layers = 2,
                    .vocab_size = 600});
  const Model repacked = Model::load(path);
  const Model rows = Model::load(path, mapped());
  // The embeddings are Q8_0 in either file type (as llama.cpp writes them).
  if (!repacks(DType::kQ8_0)) GTEST_SKIP() << active_isa_name() << " repacks no Q8_0 weights";
  EXPECT_GE(repacked.info().weight_bytes_repacked, 600 * row_bytes(DType::kQ8_0, 576));
  EXPECT_EQ(prompt_and_decode_logits(repacked, 2), prompt_and_decode_logits(rows, 2));

  const std::string state = (test::temp_dir() / "tied.state").string();
  Session a(repacked, {});
  const std::vector<int32_t> prompt = {1, 599, 0, 300};
  const auto want = a.eval(prompt);
  const std::vector<float> copy(want.begin(), want.end());
  a.save_state(state);
  Session b(rows, {});
  b.load_state(state);
  EXPECT_EQ(b.position(), 4);
  const int32_t next = 17;
  const auto la = a.eval(std::span(&next, 1));
  const std::vector<float> after(la.begin(), la.end());
  const auto lb = b.eval(std::span(&next, 1));
  EXPECT_EQ(after, std::vector<float>(lb.begin(), lb.end()));
}

std::string type_name(const testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Types, RepackedModel,
                         testing::Values(DType::kQ8_0, DType::kQ4_0, DType::kQ5_0), type_name);
INSTANTIATE_TEST_SUITE_P(Types, RepackedAtLoad,
                         testing::Values(DType::kQ8_0, DType::kQ4_0, DType::kQ4_K), type_name);

// A Q4_K_M file (Q4_K and Q6_K matrices, both repacked).
TEST(RepackedKQuants, Q4KMLogitsEqualTheFilesRowsBitForBit) {
  const std::string path = data_path(kLlamaGqa + "Q4_K_M.gguf").string();
  SLM_REQUIRE_DATA(path);
  const Model repacked = Model::load(path);
  const Model rows = Model::load(path, mapped());
  if (!repacks(DType::kQ4_K)) GTEST_SKIP() << active_isa_name() << " repacks no Q4_K weights";
  EXPECT_GT(repacked.info().weight_bytes_repacked, 0u);
  EXPECT_LT(repacked.info().weight_bytes_repacked, repacked.info().weight_bytes);
  for (int threads : {1, 2}) {
    EXPECT_EQ(prompt_and_decode_logits(repacked, threads), prompt_and_decode_logits(rows, threads))
        << "threads " << threads;
  }
}

}  // namespace
}  // namespace slm
