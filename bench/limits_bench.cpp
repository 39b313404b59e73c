// The machine's limits, the yardsticks for every other figure (docs/performance.md):
//   - memory read bandwidth: streaming a buffer far larger than the last-level cache (decode is
//     bound by it: tokens/s ≤ bandwidth ÷ bytes of weights per token), 1 and 2 threads;
//   - FP32 FMA peak: independent vfmadd231ps chains, 2 FLOP per lane;
//   - int8 peak on AVX2: the vpmaddubsw → vpmaddwd → vpaddd sequence the quantized dot products
//     use, counted as 2 ops (multiply, add) per byte pair, like llama.cpp's "int8 TOPS"; and with
//     AVX-512 VNNI (vpdpbusd), where the CPU has it;
//   - the round trip between two threads: one writes a cache line, the other answers on another
//     (every barrier and every value one thread hands another in a decode step pays it).
// Thread counts come from Google Benchmark's Threads(). Each test runs twice: rates per CPU
// second of each thread (what the cores do while they run: steadier on a shared, loaded
// machine) and wall-clock rates (real_time: what a user sees, including time the scheduler gave
// to other processes). On this 2-core box the 2-thread rows are the whole machine.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>

namespace {

constexpr size_t kBufferBytes = size_t{1} << 30;  // 1 GiB ≫ 32 MiB of L3

bool has_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

// One buffer for every run, written once so every page exists (huge pages where allowed).
const uint8_t* big_buffer() {
  static const uint8_t* buffer = []() -> const uint8_t* {
    void* p =
        mmap(nullptr, kBufferBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    madvise(p, kBufferBytes, MADV_HUGEPAGE);
    std::memset(p, 1, kBufferBytes);
    return static_cast<const uint8_t*>(p);
  }();
  return buffer;
}

// Sums 32-byte vectors of [p, p + n): four independent adds so loads, not adds, set the pace.
__attribute__((target("avx2"))) int64_t read_all(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return _mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) +
         _mm256_extract_epi64(s, 3);
}

// Each thread streams its own slice of the buffer.
void BM_MemoryReadBandwidth(benchmark::State& state) {
  if (!has_avx2_fma()) return state.SkipWithError("needs AVX2");
  const uint8_t* buffer = big_buffer();
  if (buffer == nullptr) return state.SkipWithError("cannot allocate 1 GiB");
  const size_t slice = kBufferBytes / size_t(state.threads());
  const uint8_t* mine = buffer + slice * size_t(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(read_all(mine, slice));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(slice));
}
BENCHMARK(BM_MemoryReadBandwidth)->Threads(1)->Threads(2)->MinTime(1.0);
BENCHMARK(BM_MemoryReadBandwidth)->Threads(1)->Threads(2)->MinTime(1.0)->UseRealTime();

// Thread 0 writes iteration i to one line and waits for thread 1 to write it back on another:
// the time per iteration is one round trip. On the 2-core Zen 4 virtual machine it is about 110
// ns while the host keeps both vCPUs on one CCD and about 500 ns while it puts them on two, the
// placement whose read bandwidth is the higher (docs/performance.md, "The machine").
void BM_ThreadRoundTrip(benchmark::State& state) {
  struct alignas(64) Line {
    std::atomic<int64_t> value{0};
  };
  // With one CPU each answer would wait for the scheduler to switch threads.
  if (std::thread::hardware_concurrency() < 2) return state.SkipWithError("needs 2 CPUs");
  static Line ping, pong;
  const bool first = state.thread_index() == 0;
  if (first) ping.value = pong.value = 0;  // before the threads' common start
  int64_t i = 0;
  for (auto _ : state) {
    ++i;
    if (first) {
      ping.value.store(i, std::memory_order_release);
      while (pong.value.load(std::memory_order_acquire) != i) {
      }
    } else {
      while (ping.value.load(std::memory_order_acquire) != i) {
      }
      pong.value.store(i, std::memory_order_release);
    }
  }
  // Seconds per round trip (the time columns divide by both threads' iterations: half of it).
  state.counters["round_trip"] = benchmark::Counter(
      double(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kAvgThreads | benchmark::Counter::kInvert);
}
// A fixed count, so that both threads answer every round.
BENCHMARK(BM_ThreadRoundTrip)->Threads(2)->Iterations(200000)->UseRealTime();

constexpr int64_t kInnerLoops = 1 << 16;

// One step of a chain; the empty asm keeps every step (no folding across iterations) and keeps
// the accumulator in a register.
__attribute__((target("avx2,fma"), always_inline)) inline void fma_step(__m256& acc, __m256 a,
                                                                        __m256 b) {
  acc = _mm256_fmadd_ps(acc, a, b);
  asm volatile("" : "+x"(acc));
}

// 10 independent FMA chains in named registers: enough to cover 2 FMA pipes × 4-5 cycles of
// latency (an array would live on the stack and measure loads instead).
__attribute__((target("avx2,fma"))) float fma_chains(int64_t loops) {
  __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2),
         c3 = _mm256_set1_ps(3), c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5),
         c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7), c8 = _mm256_set1_ps(8),
         c9 = _mm256_set1_ps(9);
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  for (int64_t i = 0; i < loops; ++i) {
    fma_step(c0, a, b), fma_step(c1, a, b), fma_step(c2, a, b), fma_step(c3, a, b);
    fma_step(c4, a, b), fma_step(c5, a, b), fma_step(c6, a, b), fma_step(c7, a, b);
    fma_step(c8, a, b), fma_step(c9, a, b);
  }
  const __m256 s =
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                                  _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7))),
                    _mm256_add_ps(c8, c9));
  return _mm256_cvtss_f32(s);
}

void BM_Fp32FmaPeak(benchmark::State& state) {
  if (!has_avx2_fma()) return state.SkipWithError("needs AVX2 and FMA");
  for (auto _ : state) benchmark::DoNotOptimize(fma_chains(kInnerLoops));
  // 10 chains × 8 lanes × 2 FLOP per iteration.
  state.counters["FLOP/s"] = benchmark::Counter(double(state.iterations()) * kInnerLoops * 10 * 16,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Fp32FmaPeak)->Threads(1)->Threads(2);
BENCHMARK(BM_Fp32FmaPeak)->Threads(1)->Threads(2)->UseRealTime();

// One int8 dot step of 32 byte pairs: u8·s8 pairs summed to s16 (vpmaddubsw), s16 pairs summed
// to s32 (vpmaddwd by 1), accumulated (vpaddd).
__attribute__((target("avx2"), always_inline)) inline void int8_step(__m256i& acc, __m256i u,
                                                                     __m256i s, __m256i ones) {
  asm volatile("" : "+x"(u));  // opaque per chain: the products are neither hoisted nor shared
  acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones));
  asm volatile("" : "+x"(acc));
}

// 8 independent chains in named registers.
__attribute__((target("avx2"))) int32_t int8_chains(int64_t loops) {
  __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2),
          c3 = _mm256_set1_epi32(3), c4 = _mm256_set1_epi32(4), c5 = _mm256_set1_epi32(5),
          c6 = _mm256_set1_epi32(6), c7 = _mm256_set1_epi32(7);
  const __m256i u = _mm256_set1_epi8(3);
  const __m256i s = _mm256_set1_epi8(-2);  // small: no s16 saturation
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < loops; ++i) {
    int8_step(c0, u, s, ones), int8_step(c1, u, s, ones), int8_step(c2, u, s, ones);
    int8_step(c3, u, s, ones), int8_step(c4, u, s, ones), int8_step(c5, u, s, ones);
    int8_step(c6, u, s, ones), int8_step(c7, u, s, ones);
  }
  const __m256i t =
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
  return _mm256_extract_epi32(t, 0);
}

void BM_Int8DotPeak(benchmark::State& state) {
  if (!has_avx2_fma()) return state.SkipWithError("needs AVX2");
  for (auto _ : state) benchmark::DoNotOptimize(int8_chains(kInnerLoops));
  // 8 chains × 32 byte pairs × 2 ops per iteration.
  state.counters["OP/s"] = benchmark::Counter(double(state.iterations()) * kInnerLoops * 8 * 64,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Int8DotPeak)->Threads(1)->Threads(2);
BENCHMARK(BM_Int8DotPeak)->Threads(1)->Threads(2)->UseRealTime();

bool has_avx512_vnni() {
  return __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// One vpdpbusd step: 4 u8·s8 pairs per 32-bit lane summed into it. V: __m256i or __m512i.
template <typename V>
__attribute__((target("avx512f,avx512vl,avx512vnni"), always_inline)) inline void vnni_step(V& acc,
                                                                                            V u,
                                                                                            V s) {
  asm volatile("" : "+v"(u));
  if constexpr (sizeof(V) == 32)
    acc = _mm256_dpbusd_epi32(acc, u, s);
  else
    acc = _mm512_dpbusd_epi32(acc, u, s);
  asm volatile("" : "+v"(acc));
}

// 10 independent chains in named registers (2 pipes × 4-5 cycles of latency, as for the FMA
// peak; an array would live on the stack).
template <typename V>
__attribute__((target("avx512f,avx512vl,avx512vnni"))) int32_t vnni_chains(int64_t loops) {
  V zero, u, s;
  if constexpr (sizeof(V) == 32) {
    zero = _mm256_setzero_si256(), u = _mm256_set1_epi8(3), s = _mm256_set1_epi8(-2);
  } else {
    zero = _mm512_setzero_si512(), u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
  }
  V c0 = zero, c1 = zero, c2 = zero, c3 = zero, c4 = zero, c5 = zero, c6 = zero, c7 = zero,
    c8 = zero, c9 = zero;
  for (int64_t i = 0; i < loops; ++i) {
    vnni_step(c0, u, s), vnni_step(c1, u, s), vnni_step(c2, u, s), vnni_step(c3, u, s);
    vnni_step(c4, u, s), vnni_step(c5, u, s), vnni_step(c6, u, s), vnni_step(c7, u, s);
    vnni_step(c8, u, s), vnni_step(c9, u, s);
  }
  const V t = c0 ^ c1 ^ c2 ^ c3 ^ c4 ^ c5 ^ c6 ^ c7 ^ c8 ^ c9;
  return static_cast<int32_t>(t[0]);
}

// The int8 peak with AVX-512 VNNI (the AVX-512 set's tiles use its 256-bit form): 2 ops per
// byte pair, as above. On a CPU that runs 512-bit operations as two 256-bit halves (AMD Zen 4)
// the two widths give the same rate.
template <typename V>
void BM_VnniDotPeak(benchmark::State& state) {
  if (!has_avx512_vnni()) return state.SkipWithError("needs AVX-512 VNNI");
  for (auto _ : state) benchmark::DoNotOptimize(vnni_chains<V>(kInnerLoops));
  state.counters["OP/s"] =
      benchmark::Counter(double(state.iterations()) * kInnerLoops * 10 * 2 * double(sizeof(V)),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VnniDotPeak<__m256i>)->Name("BM_VnniDotPeak/256")->Threads(1)->Threads(2);
BENCHMARK(BM_VnniDotPeak<__m512i>)->Name("BM_VnniDotPeak/512")->Threads(1)->Threads(2);

}  // namespace
