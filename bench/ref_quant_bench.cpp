// Scalar reference vec_dot per weight type at a 4096-element row (a typical hidden size).
// Bytes/s counts the weight row plus the converted activation row read per dot; this is the
// baseline the SIMD kernels are measured against, not a fast path.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/ref/quant.h"

namespace slm {
namespace {

constexpr size_t kN = 4096;

std::vector<uint8_t> quantized(DType type, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(kN);
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> q(row_bytes(type, kN));
  ref::quantize_row(type, x.data(), q.data(), kN);  // every benchmarked type has a quantizer
  return q;
}

void BM_RefVecDot(benchmark::State& state, DType type) {
  const std::vector<uint8_t> w = quantized(type, 1);
  const std::vector<uint8_t> x = quantized(ref::vec_dot_type(type), 2);
  for (auto _ : state) {
    float r = ref::vec_dot(type, w.data(), x.data(), kN);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size() + x.size()));
  state.SetLabel(std::string(dtype_name(type)) + " x " +
                 std::string(dtype_name(ref::vec_dot_type(type))));
}

#define SLM_REF_DOT(T) BENCHMARK_CAPTURE(BM_RefVecDot, T, DType::k##T)
SLM_REF_DOT(F32);
SLM_REF_DOT(F16);
SLM_REF_DOT(BF16);
SLM_REF_DOT(Q8_0);
SLM_REF_DOT(Q4_0);
SLM_REF_DOT(Q4_1);
SLM_REF_DOT(Q5_0);
SLM_REF_DOT(Q5_1);
SLM_REF_DOT(Q2_K);
SLM_REF_DOT(Q3_K);
SLM_REF_DOT(Q4_K);
SLM_REF_DOT(Q5_K);
SLM_REF_DOT(Q6_K);
#undef SLM_REF_DOT

}  // namespace
}  // namespace slm
