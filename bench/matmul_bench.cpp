// GEMV (decode) and GEMM (prefill) through slm::matmul at real model shapes, per weight type.
// GEMV reports weight bytes streamed per second; GEMM reports FLOP/s (2·rows·cols·tokens).
// The kernel set is the dispatched one (shown as "isa" in the context); compare ISAs with
// SLM_ISA=scalar|avx2|avx512|neon.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/ref/quant.h"

namespace slm {
namespace {

struct Problem {
  std::vector<uint8_t> w, scratch;
  std::vector<float> x, y;
};

Problem make_problem(DType type, size_t rows, size_t cols, size_t tokens) {
  Problem p;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(cols);
  const size_t rb = row_bytes(type, cols);
  p.w.resize(rows * rb);
  for (size_t r = 0; r < rows; ++r) {
    for (float& v : row) v = dist(rng);
    ref::quantize_row(type, row.data(), p.w.data() + r * rb, cols);
  }
  p.x.resize(tokens * cols);
  for (float& v : p.x) v = dist(rng);
  p.y.resize(tokens * rows);
  p.scratch.resize(matmul_scratch_bytes(type, cols, tokens));
  return p;
}

void BM_Matmul(benchmark::State& state, DType type, int threads) {
  const auto rows = size_t(state.range(0)), cols = size_t(state.range(1));
  const auto tokens = size_t(state.range(2));
  if (!ref::can_quantize(type)) {
    state.SkipWithError("no reference quantizer for this type");
    return;
  }
  Problem p = make_problem(type, rows, cols, tokens);
  state.SetLabel(std::string(active_isa_name()));
  for (auto _ : state) {
    matmul(type, p.w.data(), rows, cols, p.x.data(), tokens, p.y.data(), rows, p.scratch.data(),
           threads);
    benchmark::DoNotOptimize(p.y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(p.w.size()));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * double(rows * cols * tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] : {std::pair{2048, 2048}, {5632, 2048}, {2048, 5632}, {4864, 896}}) {
    b->Args({rows, cols, 1});   // decode
    b->Args({rows, cols, 64});  // prefill chunk
  }
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_Matmul, f32_t1, DType::kF32, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, f16_t1, DType::kF16, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_t1, DType::kBF16, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_t1, DType::kQ8_0, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_t2, DType::kQ8_0, 2)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, q4_0_t1, DType::kQ4_0, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, q4_0_t2, DType::kQ4_0, 2)->Apply(shapes);

}  // namespace
}  // namespace slm
