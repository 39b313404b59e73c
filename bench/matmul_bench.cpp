// GEMV (decode) and GEMM (prefill) through slm::matmul at real model shapes, per weight type.
// GEMV reports weight bytes streamed per second ("GB/s", 1e9 bytes; compare with the machine's
// read bandwidth, DESIGN.md); GEMM reports FLOP/s (2·rows·cols·tokens), at a 64-token chunk and,
// for the types with prefill tiles, at a 512-token prompt (pp512).
// BM_DecodeSteps streams a decode step's weights from DRAM, as a model's layers do (below).
// The kernel set is the dispatched one (shown as "isa" in the context); compare ISAs with
// SLM_ISA=scalar|avx2|avx512|neon.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
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

// Weight rows quantized from this many random rows, repeated: the K-quant reference quantizers
// would take minutes for a 151936-row matrix, and the bytes streamed are the same.
constexpr size_t kDistinctRows = 64;

Problem make_problem(DType type, size_t rows, size_t cols, size_t tokens, WeightLayout layout) {
  Problem p;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(cols);
  const size_t rb = row_bytes(type, cols);
  p.w.resize(rows * rb);
  for (size_t r = 0; r < rows; ++r) {
    if (r >= kDistinctRows) {
      std::copy_n(p.w.data() + (r % kDistinctRows) * rb, rb, p.w.data() + r * rb);
      continue;
    }
    for (float& v : row) v = dist(rng);
    ref::quantize_row(type, row.data(), p.w.data() + r * rb, cols);
  }
  if (layout == WeightLayout::kRepackedTiles) {  // as the model loader does, tile by tile
    const auto repack = active_kernels().repacked[static_cast<size_t>(type)].repack;
    std::vector<uint8_t> tile(kTileRows * rb);
    for (size_t r = 0; r < rows; r += kTileRows) {
      std::copy_n(p.w.data() + r * rb, tile.size(), tile.data());
      repack(tile.data(), cols, p.w.data() + r * rb);
    }
  }
  p.x.resize(tokens * cols);
  for (float& v : p.x) v = dist(rng);
  p.y.resize(tokens * rows);
  p.scratch.resize(matmul_scratch_bytes(type, cols, tokens));
  return p;
}

void BM_Matmul(benchmark::State& state, DType type, int threads, WeightLayout layout) {
  const auto rows = size_t(state.range(0)), cols = size_t(state.range(1));
  const auto tokens = size_t(state.range(2));
  if (!ref::can_quantize(type)) {
    state.SkipWithError("no reference quantizer for this type");
    return;
  }
  if (cols % traits(type).block_elems != 0) {  // e.g. K-quants (256) at Qwen2.5-0.5B's 896
    state.SkipWithError("cols is not a multiple of the block size");
    return;
  }
  if (layout == WeightLayout::kRepackedTiles &&
      active_kernels().repacked[static_cast<size_t>(type)].repack == nullptr) {
    state.SkipWithError("this kernel set does not repack this type");
    return;
  }
  Problem p = make_problem(type, rows, cols, tokens, layout);
  state.SetLabel(std::string(active_isa_name()));
  for (auto _ : state) {
    matmul(type, p.w.data(), rows, cols, p.x.data(), tokens, p.y.data(), rows, p.scratch.data(),
           threads, layout);
    benchmark::DoNotOptimize(p.y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(p.w.size()));
  state.counters["GB/s"] =
      benchmark::Counter(double(p.w.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * double(rows * cols * tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// With --benchmark_repetitions, a "_min" aggregate: the smallest of each column over them.
void add_min_aggregate(benchmark::internal::Benchmark* b) {
  b->ComputeStatistics("min", [](const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
  });
}

// Issue 4's shapes (rows x cols): TinyLlama / Llama-3.2-1B projections, Qwen2.5-0.5B's and
// SmolLM2-135M's MLP (rows of 28 and 18 blocks: 4 and 2 past the last group of 8), and the output
// layers of TinyLlama (32000 x 2048) and Qwen2.5-0.5B (151936 x 896), the latter
// decode only (a 64-token prefill there takes seconds on the reference kernels).
void shapes(benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] :
       {std::pair{2048, 2048}, {5632, 2048}, {2048, 5632}, {4864, 896}, {1536, 576}}) {
    b->Args({rows, cols, 1});   // decode
    b->Args({rows, cols, 64});  // prefill chunk
  }
  b->Args({32000, 2048, 1});
  // A few tokens (batched decode, short prompts): where streaming the weights from DRAM stops
  // being the limit.
  for (int64_t tokens : {2, 4, 8}) b->Args({32000, 2048, tokens});
  b->Args({151936, 896, 1});
  b->Unit(benchmark::kMillisecond);
  // On a loaded machine the fastest of many short repetitions is the one the scheduler left
  // alone: --benchmark_min_time=0.0001 --benchmark_repetitions=300
  // --benchmark_report_aggregates_only=true reports its time as the "_min" aggregate (whose
  // counters are the smallest of each, not that repetition's: derive GB/s from the time).
  // Debian 12's Google Benchmark 1.7 takes min_time in seconds only, not as "1x".
  add_min_aggregate(b);
}

// One token through distinct copies of a repacked matrix, one after another in one team of two
// threads, as a decoder runs its layers' steps: the copies together are several times the L3, so
// every step streams its weights from DRAM and pays its own start, end and barrier. BM_Matmul's
// decode rows re-read one matrix that, at these shapes, stays in the caches after the first
// call, and start a team per call; neither is what decoding a small model does.
void BM_DecodeSteps(benchmark::State& state, DType type) {
  const auto rows = size_t(state.range(0)), cols = size_t(state.range(1));
  constexpr int kThreads = 2;
  if (active_kernels().repacked[static_cast<size_t>(type)].repack == nullptr) {
    state.SkipWithError("this kernel set does not repack this type");
    return;
  }
  Problem p = make_problem(type, rows, cols, 1, WeightLayout::kRepackedTiles);
  const size_t matrix = p.w.size(), copies = std::max<size_t>(2, (size_t{256} << 20) / matrix);
  std::vector<uint8_t> ring(copies * matrix);
  for (size_t c = 0; c < copies; ++c) std::memcpy(&ring[c * matrix], p.w.data(), matrix);
  p.scratch.assign(matmul_scratch_bytes(type, cols, 1, kThreads), 0);
  state.SetLabel(std::string(active_isa_name()));
  for (auto _ : state) {
#pragma omp parallel num_threads(kThreads)
    for (size_t c = 0; c < copies; ++c) {
      matmul(type, &ring[c * matrix], rows, cols, p.x.data(), 1, p.y.data(), rows, p.scratch.data(),
             kThreads, WeightLayout::kRepackedTiles);
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations() * copies * matrix));
  // Seconds per step (an inverted rate, so that the "_min" aggregate's is the fastest).
  state.counters["step"] = benchmark::Counter(
      double(copies), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// SmolLM2-135M's and Qwen2.5-0.5B's layer steps (q and o, gate and up, down) and Qwen2.5-0.5B's
// output layer. The host's bandwidth changes from run to run (docs/performance.md): compare
// the "_min" aggregate of many short repetitions, alternating the builds compared.
void decode_step_shapes(benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] : {std::pair{576, 576},
                                   {1536, 576},
                                   {576, 1536},
                                   {896, 896},
                                   {4864, 896},
                                   {896, 4864},
                                   {151936, 896}}) {
    b->Args({rows, cols});
  }
  // The "_min" aggregate holds the fastest repetition's time and step (its bytes_per_second is
  // the smallest of each: derive GB/s from the time).
  b->Unit(benchmark::kMillisecond)->UseRealTime();
  add_min_aggregate(b);
}

// A 512-token prompt at the projection shapes above.
void prefill_shapes(benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] : {std::pair{2048, 2048}, {5632, 2048}, {2048, 5632}}) {
    b->Args({rows, cols, 512});
  }
  b->Unit(benchmark::kMillisecond)->MinTime(1.0);
}

// BM_Matmul/<type>_t<threads>/rows/cols/tokens, BM_Matmul/<type>_t<threads>_pp512/...
const bool kRegistered = [] {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                     DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,
                     DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    for (int threads : {1, 2}) {
      const std::string name =
          "BM_Matmul/" + std::string(dtype_name(type)) + "_t" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, threads, WeightLayout::kRows)
          ->Apply(shapes);
      if (type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ5_0 ||
          type == DType::kQ4_K || type == DType::kQ5_K || type == DType::kQ6_K) {
        benchmark::RegisterBenchmark((name + "_pp512").c_str(), BM_Matmul, type, threads,
                                     WeightLayout::kRows)
            ->Apply(prefill_shapes);
      }
      // The layout the model loader gives Q8_0, Q4_0, Q5_0, Q4_K and Q6_K where the kernel set
      // repacks them.
      if (type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ5_0 ||
          type == DType::kQ4_K || type == DType::kQ6_K) {
        const std::string repacked = name + "_repacked";
        benchmark::RegisterBenchmark(repacked.c_str(), BM_Matmul, type, threads,
                                     WeightLayout::kRepackedTiles)
            ->Apply(shapes);
        benchmark::RegisterBenchmark((repacked + "_pp512").c_str(), BM_Matmul, type, threads,
                                     WeightLayout::kRepackedTiles)
            ->Apply(prefill_shapes);
      }
      if (threads == 2 && (type == DType::kQ8_0 || type == DType::kQ4_0)) {
        benchmark::RegisterBenchmark(("BM_DecodeSteps/" + std::string(dtype_name(type))).c_str(),
                                     BM_DecodeSteps, type)
            ->Apply(decode_step_shapes);
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace slm
