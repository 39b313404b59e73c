// The forward pass's threading and memory contracts (issue 4): one parallel region whose team
// shares every step, with each value computed by one thread in a fixed order, so logits are
// bit-identical for any thread count; and decoding a token allocates nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "slm/synth.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/allocation_counter.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

// Logits of a 7-token prompt (all rows) then 12 greedy decode steps, concatenated.
std::vector<float> run(const Model& model, int threads, KvType kv) {
  Session session(model, {.threads = threads, .kv_type = kv});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383};
  const auto rows = session.eval(prompt, /*all_logits=*/true);
  std::vector<float> out(rows.begin(), rows.end());
  const size_t V = size_t(model.info().vocab_size);
  int32_t next = int32_t(std::max_element(out.end() - long(V), out.end()) - (out.end() - long(V)));
  for (int step = 0; step < 12; ++step) {
    const auto l = session.eval(std::span(&next, 1));
    out.insert(out.end(), l.begin(), l.end());
    next = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
  }
  return out;
}

void expect_thread_count_invariant(const std::string& path, const LoadOptions& options = {}) {
  const Model model = Model::load(path, options);
  for (KvType kv : {KvType::kF32, KvType::kF16}) {
    const std::vector<float> one = run(model, 1, kv);
    for (int threads : {2, 3}) {
      const std::vector<float> got = run(model, threads, kv);
      ASSERT_EQ(got.size(), one.size());
      EXPECT_EQ(std::memcmp(got.data(), one.data(), one.size() * sizeof(float)), 0)
          << path << ": logits with " << threads << " threads differ from 1 thread (kv "
          << (kv == KvType::kF16 ? "f16" : "f32") << ")";
    }
  }
}

void expect_no_decode_allocations(const std::string& path) {
  const Model model = Model::load(path);
  for (int threads : {1, 2}) {
    Session session(model, {.threads = threads});
    const std::vector<int32_t> prompt = {1, 403, 407, 261};
    session.eval(prompt);
    int32_t next = 378;
    session.eval(std::span(&next, 1));  // the first decode step may size scratch for one token
    test::AllocationCounter counter;
    for (int step = 0; step < 20; ++step) session.eval(std::span(&next, 1));
    EXPECT_EQ(counter.count(), 0u) << path << ", " << threads << " threads";
  }
}

TEST(Forward, LogitsBitIdenticalForAnyThreadCountStories260K) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  expect_thread_count_invariant(data_path("models/stories260K/stories260K.gguf"));
  expect_thread_count_invariant(data_path("models/stories260K/stories260K-Q4_0.gguf"));
}

TEST(Forward, LogitsBitIdenticalForAnyThreadCountZooLlama) {
  for (const char* file : {"llama-gqa-F32.gguf", "llama-gqa-Q8_0.gguf", "llama-gqa-Q4_K_M.gguf"}) {
    SLM_REQUIRE_DATA(data_path(std::string("zoo/gguf/") + file));
    expect_thread_count_invariant(data_path(std::string("zoo/gguf/") + file));
  }
}

// Biases, per-head norms and a sliding window (16 < the 19 positions run, f16 cache included);
// LayerNorm, a parallel block and a GELU MLP (phi2); fused q/k/v and gate/up with LongRoPE
// (phi3-longrope).
TEST(Forward, LogitsBitIdenticalForAnyThreadCountOtherArchitectures) {
  for (const char* path : {"zoo/gguf/qwen2-F32.gguf", "zoo/hf/qwen3", "zoo/hf/mistral-swa",
                           "zoo/gguf/phi2-F32.gguf", "zoo/hf/phi3-longrope"}) {
    SLM_REQUIRE_DATA(data_path(path));
    expect_thread_count_invariant(data_path(path));
  }
}

// Mixture of experts: routing and per-expert token groups (stacked GGUF experts, a shared
// expert, HF per-expert tensors), and Q8_0 experts whose grouped tokens take the GEMM tiles.
TEST(Forward, LogitsBitIdenticalForAnyThreadCountMixtureOfExperts) {
  for (const char* path :
       {"zoo/gguf/llama-moe-F32.gguf", "zoo/gguf/qwen2moe-F32.gguf", "zoo/hf/qwen3moe",
        "zoo/hf/phimoe"}) {
    SLM_REQUIRE_DATA(data_path(path));
    expect_thread_count_invariant(data_path(path));
  }
  expect_thread_count_invariant(data_path("zoo/gguf/llama-moe-F32.gguf"), {.quantize = "q8_0"});
}

TEST(Forward, DecodingAllocatesNothingMixtureOfExperts) {
  SLM_REQUIRE_DATA(data_path("zoo/gguf/qwen2moe-F32.gguf"));
  expect_no_decode_allocations(data_path("zoo/gguf/qwen2moe-F32.gguf"));
}

// Gemma 2 (post-norms, soft-capped scores, window 10 on even layers), Gemma 3 (two RoPE bases),
// OLMo 2 (norms after the blocks, whole-projection q/k norms), Granite (multipliers), SmolLM3
// (a layer without RoPE).
TEST(Forward, LogitsBitIdenticalForAnyThreadCountGemmaFamily) {
  for (const char* path : {"zoo/gguf/gemma2-F32.gguf", "zoo/hf/gemma3", "zoo/hf/olmo2",
                           "zoo/hf/granite", "zoo/hf/smollm3"}) {
    SLM_REQUIRE_DATA(data_path(path));
    expect_thread_count_invariant(data_path(path));
  }
}

// Grouped-query attention (H query heads over KV kv heads, G = H / KV each) equals multi-head
// attention with each kv head's K and V projections repeated for its G query heads: the second
// file runs one head per call and never groups, so this checks which heads the decoder hands the
// shared-row kernels (attention_heads, in pairs) against a path that has no groups at all. Odd
// G, as in SmolLM2-135M (9 / 3) and Qwen2.5-0.5B (14 / 2, with k and v biases), leaves a head
// without a partner. Every step is the same arithmetic in both, so the logits are bit-identical.
std::string with_kv_heads_repeated(const std::string& path) {
  const GgufFile src = GgufFile::open(path);
  const std::string arch(src.require_string("general.architecture"));
  const uint64_t H = src.require_uint(arch + ".attention.head_count");
  const uint64_t KV = src.require_uint(arch + ".attention.head_count_kv");
  GgufWriter out;
  for (const GgufKv& kv : src.metadata()) out.set(kv.key, GgufMetaValue::from(kv.value));
  out.set_u32(arch + ".attention.head_count_kv", uint32_t(H));
  std::vector<std::vector<uint8_t>> repeated;  // outlives the writer's write()
  for (const GgufTensor& t : src.tensors()) {
    const bool kv_projection =
        t.name.find("attn_k.") != std::string::npos || t.name.find("attn_v.") != std::string::npos;
    if (!kv_projection) {
      out.add_tensor_view(t.name, t.dims, t.type, {t.data, t.n_bytes});
      continue;
    }
    // A weight's rows, or a bias's elements: kv head g is the g-th of KV equal slices.
    const uint64_t slice = t.n_bytes / KV;
    std::vector<uint8_t>& bytes = repeated.emplace_back();
    for (uint64_t h = 0; h < H; ++h) {
      const uint8_t* from = t.data + h / (H / KV) * slice;
      bytes.insert(bytes.end(), from, from + slice);
    }
    std::vector<uint64_t> dims = t.dims;
    dims.back() = dims.back() / KV * H;
    out.add_tensor_view(t.name, dims, t.type, bytes);
  }
  const std::string copy = (test::temp_dir() / "kv-heads-repeated.gguf").string();
  out.write(copy);
  return copy;
}

TEST(Forward, GroupedQueryAttentionEqualsRepeatedKvHeads) {
  for (const char* preset : {"smollm2-135m", "qwen2.5-0.5b"}) {
    const std::string path = (test::temp_dir() / "gqa.gguf").string();
    synthesize(path, {.preset = preset, .type = "q8_0", .layers = 1, .vocab_size = 512});
    const Model grouped = Model::load(path);
    const Model repeated = Model::load(with_kv_heads_repeated(path));
    ASSERT_EQ(repeated.info().head_count_kv, repeated.info().head_count) << preset;
    ASSERT_NE(grouped.info().head_count_kv, grouped.info().head_count) << preset;
    for (KvType kv : {KvType::kF32, KvType::kF16}) {
      for (int threads : {1, 2}) {
        const std::vector<float> want = run(repeated, threads, kv), got = run(grouped, threads, kv);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << preset << ", " << threads << " threads, kv " << (kv == KvType::kF16 ? "f16" : "f32");
      }
    }
  }
}

TEST(Forward, AllocationCounterCounts) {
  test::AllocationCounter counter;
  // Through a volatile pointer so the compiler cannot elide the new/delete pair.
  std::vector<float>* volatile v = new std::vector<float>(3);
  delete v;
  EXPECT_GE(counter.count(), 2u);
}

TEST(Forward, DecodingAllocatesNothing) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  expect_no_decode_allocations(data_path("models/stories260K/stories260K.gguf"));
}

TEST(Forward, DecodingAllocatesNothingZooLlama) {
  // Large enough that decoding runs a team of two (stories260K runs on one thread).
  SLM_REQUIRE_DATA(data_path("zoo/gguf/llama-gqa-Q8_0.gguf"));
  expect_no_decode_allocations(data_path("zoo/gguf/llama-gqa-Q8_0.gguf"));
}

}  // namespace
}  // namespace slm
