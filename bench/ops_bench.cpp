// The forward pass's element-wise and row ops (KernelSet::ops) at real shapes: E = 2048 rows for
// norms and adds, F = 5632 for SwiGLU / GELU, 32 query heads of head_dim 64 over 4 kv heads for
// RoPE and attention (an F32, F16 or Q8_0 cache), 128 / 512 / 2048 cached positions. Reports
// bytes read+written per second (elements/s for the row ops too). The set is the dispatched one
// (label); compare ISAs with SLM_ISA=scalar|avx2|avx512. One thread: the decoder shares these out
// over its team itself.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quant.h"

namespace slm {
namespace {

constexpr size_t kEmbd = 2048, kFf = 5632, kHeads = 32, kKvHeads = 4, kHeadDim = 64;

std::vector<float> random(size_t n, float sd = 1.0f) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

const OpsSet& ops(benchmark::State& state) {
  state.SetLabel(std::string(active_isa_name()));
  return active_kernels().ops;
}

void rate(benchmark::State& state, size_t elements, size_t bytes) {
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(elements));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
}

void BM_RmsNorm(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto x = random(kEmbd), w = random(kEmbd);
  std::vector<float> y(kEmbd);
  for (auto _ : state) {
    o.rms_norm(x.data(), w.data(), 1e-5f, y.data(), kEmbd);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, kEmbd, 3 * kEmbd * sizeof(float));
}
BENCHMARK(BM_RmsNorm);

void BM_LayerNorm(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto x = random(kEmbd), w = random(kEmbd), b = random(kEmbd);
  std::vector<float> y(kEmbd);
  for (auto _ : state) {
    o.layer_norm(x.data(), w.data(), b.data(), 1e-5f, y.data(), kEmbd);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, kEmbd, 4 * kEmbd * sizeof(float));
}
BENCHMARK(BM_LayerNorm);

void BM_Add(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto x = random(kEmbd);
  auto y = random(kEmbd);
  for (auto _ : state) {
    o.add(y.data(), x.data(), kEmbd);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, kEmbd, 3 * kEmbd * sizeof(float));
}
BENCHMARK(BM_Add);

void BM_Swiglu(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto g = random(kFf, 3.0f), u = random(kFf);
  std::vector<float> y(kFf);
  for (auto _ : state) {
    o.swiglu(g.data(), u.data(), y.data(), kFf);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, kFf, 3 * kFf * sizeof(float));
}
BENCHMARK(BM_Swiglu);

void BM_Gelu(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto x = random(kFf, 3.0f);
  std::vector<float> y(kFf);
  for (auto _ : state) {
    o.gelu(x.data(), y.data(), kFf);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, kFf, 2 * kFf * sizeof(float));
}
BENCHMARK(BM_Gelu);

// Gemma 2's final soft-cap over its 256000-token vocabulary, once per generated token.
void BM_Softcap(benchmark::State& state) {
  const OpsSet& o = ops(state);
  constexpr size_t kVocab = 256000;
  const auto logits = random(kVocab, 10.0f);
  std::vector<float> x(kVocab);
  for (auto _ : state) {
    state.PauseTiming();
    x = logits;
    state.ResumeTiming();
    o.softcap(x.data(), 30.0f, kVocab);
    benchmark::DoNotOptimize(x.data());
  }
  rate(state, kVocab, 2 * kVocab * sizeof(float));
}
BENCHMARK(BM_Softcap)->Unit(benchmark::kMicrosecond);

void BM_Softmax(benchmark::State& state) {
  const OpsSet& o = ops(state);
  const auto n = size_t(state.range(0));
  const auto x = random(n, 3.0f);
  auto y = x;
  for (auto _ : state) {
    y = x;  // softmax is in place; restoring the input is part of what is timed (a copy of n)
    o.softmax(y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  rate(state, n, 2 * n * sizeof(float));
}
BENCHMARK(BM_Softmax)->Arg(128)->Arg(512)->Arg(2048);

// All 32 + 4 heads of one token (what a decode step rotates per layer).
void BM_Rope(benchmark::State& state, bool interleaved) {
  const OpsSet& o = ops(state);
  auto heads = random((kHeads + kKvHeads) * kHeadDim);
  std::vector<float> cs(kHeadDim);
  ref::rope_table(100, kHeadDim, 10000.0f, cs.data());
  const auto rope = interleaved ? o.rope_interleaved : o.rope_half_split;
  for (auto _ : state) {
    for (size_t h = 0; h < kHeads + kKvHeads; ++h) rope(&heads[h * kHeadDim], cs.data(), kHeadDim);
    benchmark::DoNotOptimize(heads.data());
  }
  rate(state, heads.size(), 2 * heads.size() * sizeof(float));
}
BENCHMARK_CAPTURE(BM_Rope, interleaved, true);
BENCHMARK_CAPTURE(BM_Rope, half_split, false);

// One decode step's attention for one layer: 32 query heads over `positions` cached rows of
// 4 kv heads (GQA), the cache in the decoder's layout, stored as F32, F16 or Q8_0. Bytes: the K
// and V rows read (each kv head is read by 8 query heads; counted once per query head, as the
// kernel reads it). heads_together: the 8 query heads of each kv head in one attention_heads
// call, as the decoder makes it (where the set has one).
void BM_Attention(benchmark::State& state, DType type, bool heads_together = false) {
  const OpsSet& o = ops(state);
  if (heads_together && o.attention_heads == nullptr) {
    return state.SkipWithError("this kernel set has no attention_heads");
  }
  const auto positions = size_t(state.range(0));
  const size_t row = kKvHeads * kHeadDim, row_b = row_bytes(type, row);
  const size_t head_b = row_bytes(type, kHeadDim);
  const auto kf = random(positions * row), vf = random(positions * row);
  std::vector<uint8_t> k(positions * row_b), v(positions * row_b);
  for (size_t p = 0; p < positions; ++p) {
    ref::quantize_row(type, &kf[p * row], &k[p * row_b], row);
    ref::quantize_row(type, &vf[p * row], &v[p * row_b], row);
  }
  const auto q = random(kHeads * kHeadDim);
  std::vector<float> out(kHeads * kHeadDim), scores(positions);
  const float scale = 0.125f;
  const uint8_t* k_page = k.data();
  const uint8_t* v_page = v.data();
  constexpr size_t kGroup = kHeads / kKvHeads;
  for (auto _ : state) {
    for (size_t g = 0; heads_together && g < kKvHeads; ++g) {
      const ref::KvRows keys{&k_page, positions, row_b, g * head_b, 0};
      const ref::KvRows values{&v_page, positions, row_b, g * head_b, 0};
      o.attention_heads(&q[g * kGroup * kHeadDim], kGroup, keys, values, type == DType::kF16,
                        positions, kHeadDim, scale, &out[g * kGroup * kHeadDim]);
    }
    for (size_t h = 0; !heads_together && h < kHeads; ++h) {
      const size_t g = h / kGroup;
      const ref::KvRows keys{&k_page, positions, row_b, g * head_b, 0};
      const ref::KvRows values{&v_page, positions, row_b, g * head_b, 0};
      float* o_h = &out[h * kHeadDim];
      if (type == DType::kQ8_0) {
        o.attention_q8_0(&q[h * kHeadDim], keys, values, positions, kHeadDim, scale, 0.0f,
                         scores.data(), o_h);
      } else {
        o.attention(&q[h * kHeadDim], keys, values, type == DType::kF16, positions, kHeadDim,
                    scale, scores.data(), o_h);
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  rate(state, kHeads * positions, kHeads * positions * 2 * head_b);
}
BENCHMARK_CAPTURE(BM_Attention, f32, DType::kF32)->Arg(128)->Arg(512)->Arg(2048);
BENCHMARK_CAPTURE(BM_Attention, f16, DType::kF16)->Arg(128)->Arg(512)->Arg(2048);
BENCHMARK_CAPTURE(BM_Attention, q8_0, DType::kQ8_0)->Arg(128)->Arg(512)->Arg(2048);
BENCHMARK_CAPTURE(BM_Attention, f16_heads_together, DType::kF16, true)
    ->Arg(128)
    ->Arg(512)
    ->Arg(2048);

}  // namespace
}  // namespace slm
