// AVX-512 dots and prefill tiles for F16 weights (F16 activations, as ggml pairs them) and BF16
// weights (F32 activations, as transformers computes them).
//
// The products are summed in F32 with FMA, 16 lanes over the elements, then _mm512_reduce_add_ps:
// one order, which a tile keeps for each of its (row, token) elements, so the tiles give the
// dots' bits. The AVX2 set's dots sum in double, as the reference does; F32 sums are within
// 2^-24 · (n/16 + 4) · Σ|w x| of that (16 lanes of n/16 terms, then a 4-level tree), far inside
// DESIGN.md's 1e-4 bound for F16 and BF16 weights. In exchange a tile keeps 24 accumulators
// (8 rows x 3 tokens) in registers, each converted weight vector serving 3 tokens, and goes over
// its rows 512 elements at a time, so that the rows' part stays in L1 while every token goes by.
// BM_Matmul/f16_t1/{2048/2048,5632/2048,2048/5632}/64, one thread, GFLOP/s: one double-summing
// dot per element 13; these tiles over whole rows 43-45; in 512-element passes 83-87, 75 % of
// the FMA peak (docs/performance.md).
//
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/isa_kernels.h"

namespace slm::isa {
namespace {

constexpr size_t kL = 16;         // elements per vector
constexpr size_t kR = kTileRows;  // rows of a tile
constexpr size_t kTokenStep = 3;  // tokens per pass over the rows: 8 x 3 accumulators

// A weight type: 16 weights (or the first ones, under a mask) and 16 activations as floats,
// exactly.
struct F16Weights {
  using W = uint16_t;
  using X = uint16_t;
  static __m512 weights(const W* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
  static __m512 activations(const X* p, __mmask16 m) { return weights(p, m); }
};

struct BF16Weights {
  using W = uint16_t;
  using X = float;
  // BF16 is the top half of an F32: widen each u16 and shift it up.
  static __m512 weights(const W* p, __mmask16 m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static __m512 activations(const X* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

// acc[r · kT + t] += w_r[i, i + 16) · x_t[i, i + 16) lane by lane, for kRows rows and kT tokens
// and i from i0 in steps of 16 up to i1 (the lanes past n masked to zero, which adds +0 to every
// lane alike): the order of a dot over the whole row, continued from where acc left it.
template <typename Type, size_t kRows, size_t kT>
[[gnu::always_inline]] inline void accumulate(const uint8_t* w, size_t w_stride, const uint8_t* x,
                                              size_t x_stride, size_t i0, size_t i1, size_t n,
                                              __m512* acc) {
  using W = typename Type::W;
  using X = typename Type::X;
  const auto step = [&](size_t i, __mmask16 m) {
    __m512 xv[kT];
    for (size_t t = 0; t < kT; ++t) {
      xv[t] = Type::activations(reinterpret_cast<const X*>(x + t * x_stride) + i, m);
    }
    for (size_t r = 0; r < kRows; ++r) {
      const __m512 wv = Type::weights(reinterpret_cast<const W*>(w + r * w_stride) + i, m);
      for (size_t t = 0; t < kT; ++t) {
        acc[r * kT + t] = _mm512_fmadd_ps(wv, xv[t], acc[r * kT + t]);
      }
    }
  };
  size_t i = i0;
  for (; i + kL <= i1; i += kL) step(i, 0xFFFF);
  if (i < i1) step(i, static_cast<__mmask16>((1u << (n - i)) - 1));
}

template <typename Type>
float dot(const void* w_row, const void* x_row, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  accumulate<Type, 1, 1>(static_cast<const uint8_t*>(w_row), 0, static_cast<const uint8_t*>(x_row),
                         0, 0, n, n, &acc);
  return _mm512_reduce_add_ps(acc);
}

// Elements per pass of a tile over its rows: the 8 rows' part (8 KB of F16) stays in L1 while
// every token goes by, and each token's sums wait in `acc` between passes.
constexpr size_t kChunk = 512;

// acc[t · kR + r] (kT tokens from t0): the chunk [i0, i1) added, in registers meanwhile.
template <typename Type, size_t kT>
void tile_chunk(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, size_t i0,
                size_t i1, size_t n, __m512* acc) {
  __m512 a[kR * kT];
#pragma GCC unroll 24
  for (size_t j = 0; j < kR * kT; ++j) a[j] = acc[j % kT * kR + j / kT];
  accumulate<Type, kR, kT>(w, w_stride, x, x_stride, i0, i1, n, a);
#pragma GCC unroll 24
  for (size_t j = 0; j < kR * kT; ++j) acc[j % kT * kR + j / kT] = a[j];
}

// The tile (GemmTileFn): chunk by chunk, the 8 rows for 3 tokens at a time, then the 1 or 2
// left; each (row, token) sums in the dot's order.
template <typename Type>
void tile(const void* w, size_t w_stride, const void* x, size_t x_stride, size_t n_tokens, size_t n,
          float* y, size_t y_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  __m512 acc[kMaxTileTokens * kR];
  for (size_t j = 0; j < n_tokens * kR; ++j) acc[j] = _mm512_setzero_ps();
  for (size_t i0 = 0; i0 < n; i0 += kChunk) {
    const size_t i1 = std::min(n, i0 + kChunk);
    size_t t = 0;
    for (; t + kTokenStep <= n_tokens; t += kTokenStep) {
      tile_chunk<Type, kTokenStep>(wb, w_stride, xb + t * x_stride, x_stride, i0, i1, n,
                                   acc + t * kR);
    }
    if (n_tokens - t == 2) {
      tile_chunk<Type, 2>(wb, w_stride, xb + t * x_stride, x_stride, i0, i1, n, acc + t * kR);
    } else if (n_tokens - t == 1) {
      tile_chunk<Type, 1>(wb, w_stride, xb + t * x_stride, x_stride, i0, i1, n, acc + t * kR);
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t r = 0; r < kR; ++r) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[t * kR + r]);
  }
}

}  // namespace

void add_avx512_float_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kF16)] = dot<F16Weights>;
  k.vec_dot[static_cast<size_t>(DType::kBF16)] = dot<BF16Weights>;
  k.gemm_tile[static_cast<size_t>(DType::kF16)] = tile<F16Weights>;
  k.gemm_tile[static_cast<size_t>(DType::kBF16)] = tile<BF16Weights>;
}

}  // namespace slm::isa
