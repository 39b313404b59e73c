// F16 and BF16 dots and prefill tiles (KernelSet::vec_dot, gemm_tile), written once over a vector
// type V for the AVX2 set (avx2_float.cpp, 8 lanes) and the AVX-512 set (avx512_float.cpp, 16).
// F16 weights meet F16 activations, as ggml pairs them; BF16 weights meet F32 activations, as
// transformers computes them. Every value widens to F32 exactly.
//
// The products are summed in F32 with FMA, V::kL lanes over the elements, then V::sum: one order,
// which a tile keeps for each of its (row, token) elements, so the tiles give the dots' bits. The
// reference sums in double; F32 sums are within 2^-24 · (n / kL + log2 kL) · Σ|w x| of that
// (kL lanes of n / kL terms, then a tree), far inside DESIGN.md's 1e-4 bound for F16 and BF16
// weights. In exchange a tile keeps V::kRowStep x V::kTokenStep accumulators in registers, each
// converted weight vector serving several tokens, and goes over its rows kFloatChunk elements at a
// time, so that the rows' part stays in L1 while every token goes by. AVX-512,
// BM_Matmul/f16_t1/{2048/2048,5632/2048,2048/5632}/64, one thread, GFLOP/s: one double-summing
// dot per element 13; these tiles over whole rows 44-45; in 512-element passes 83-88, 75 % of the
// FMA peak (docs/performance.md).
//
// V: F (a vector of kL floats), kWidenF16 (whether its F16 tiles read widened activations),
// zero(), fmadd(a, b, c) = a · b + c, sum(v) (a fixed order), store(p, v), and
// f16 / bf16 / f32(p, count): the count (≤ kL) values at p as floats, the lanes past them zero
// (which adds +0 to every lane alike). Include only from files compiled with V's ISA flags;
// internal linkage, as in avx2_common.h.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/dispatch.h"

namespace slm::isa {
namespace {

// F16 weights, with activations as F16 (X = uint16_t: the dots, AVX2's tiles) or widened to F32
// (X = float) once per row by widen_f16 (KernelSet::pack) where V::kWidenF16, so that a tile
// converts only its weights. The widening is exact: the tiles keep the dots' bits.
// BM_Matmul/f16_t1/{2048/2048,5632/2048,2048/5632}/64, one thread, GFLOP/s, best of 3,
// alternated: AVX-512 83-84 / 81-83 / 80-86 -> 86-92 / 91-94 / 98-99; AVX2, where the 4 x 2 tile
// converts fewer vectors per FMA, 80-87 -> 77-86, so AVX2 keeps F16 activations.
template <typename V, typename Activation = uint16_t>
struct F16Weights {
  using W = uint16_t;
  using X = Activation;
  static typename V::F weights(const W* p, size_t count) { return V::f16(p, count); }
  static typename V::F activations(const X* p, size_t count) {
    if constexpr (std::is_same_v<X, float>) {
      return V::f32(p, count);
    } else {
      return V::f16(p, count);
    }
  }
};

template <typename V>
struct BF16Weights {
  using W = uint16_t;
  using X = float;
  static typename V::F weights(const W* p, size_t count) { return V::bf16(p, count); }
  static typename V::F activations(const X* p, size_t count) { return V::f32(p, count); }
};

// acc[r · kT + t] += w_r[i, i + kL) · x_t[i, i + kL) lane by lane, for kRows rows and kT tokens
// and i from i0 in steps of kL up to i1 (i1 = n or a multiple of kL): the order of a dot over the
// whole row, continued from where acc left it.
template <typename V, typename Type, size_t kRows, size_t kT>
[[gnu::always_inline]] inline void accumulate(const uint8_t* w, size_t w_stride, const uint8_t* x,
                                              size_t x_stride, size_t i0, size_t i1,
                                              typename V::F* acc) {
  using W = typename Type::W;
  using X = typename Type::X;
  const auto step = [&](size_t i, size_t count) {
    typename V::F xv[kT];
    for (size_t t = 0; t < kT; ++t) {
      xv[t] = Type::activations(reinterpret_cast<const X*>(x + t * x_stride) + i, count);
    }
    for (size_t r = 0; r < kRows; ++r) {
      const typename V::F wv =
          Type::weights(reinterpret_cast<const W*>(w + r * w_stride) + i, count);
      for (size_t t = 0; t < kT; ++t) acc[r * kT + t] = V::fmadd(wv, xv[t], acc[r * kT + t]);
    }
  };
  size_t i = i0;
  for (; i + V::kL <= i1; i += V::kL) step(i, V::kL);
  if (i < i1) step(i, i1 - i);
}

template <typename V, typename Type>
float float_dot(const void* w_row, const void* x_row, size_t n) {
  typename V::F acc = V::zero();
  accumulate<V, Type, 1, 1>(static_cast<const uint8_t*>(w_row), 0,
                            static_cast<const uint8_t*>(x_row), 0, 0, n, &acc);
  return V::sum(acc);
}

// Elements per pass of a tile over its rows: the 8 rows' part (8 KB of F16) stays in L1.
constexpr size_t kFloatChunk = 512;

// acc[t · kTileRows + r] for kRows rows and kT tokens: the chunk [i0, i1) added, held in
// registers meanwhile.
template <typename V, typename Type, size_t kRows, size_t kT>
void tile_chunk(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, size_t i0,
                size_t i1, typename V::F* acc) {
  typename V::F a[kRows * kT];
#pragma GCC unroll 24
  for (size_t j = 0; j < kRows * kT; ++j) a[j] = acc[j % kT * kTileRows + j / kT];
  accumulate<V, Type, kRows, kT>(w, w_stride, x, x_stride, i0, i1, a);
#pragma GCC unroll 24
  for (size_t j = 0; j < kRows * kT; ++j) acc[j % kT * kTileRows + j / kT] = a[j];
}

// The tile (GemmTileFn): chunk by chunk, kRowStep rows for kTokenStep tokens at a time, then the
// tokens left; each (row, token) sums in the dot's order.
template <typename V, typename Type>
void float_tile(const void* w, size_t w_stride, const void* x, size_t x_stride, size_t n_tokens,
                size_t n, float* y, size_t y_stride) {
  constexpr size_t kRows = V::kRowStep, kT = V::kTokenStep;
  static_assert(kTileRows % kRows == 0 && kT <= 3);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  typename V::F acc[kMaxTileTokens * kTileRows];
  for (size_t j = 0; j < n_tokens * kTileRows; ++j) acc[j] = V::zero();
  for (size_t i0 = 0; i0 < n; i0 += kFloatChunk) {
    const size_t i1 = std::min(n, i0 + kFloatChunk);
    for (size_t r = 0; r < kTileRows; r += kRows) {
      const uint8_t* rows = wb + r * w_stride;
      const auto chunk = [&]<size_t kTokens>(size_t t) {
        tile_chunk<V, Type, kRows, kTokens>(rows, w_stride, xb + t * x_stride, x_stride, i0, i1,
                                            acc + t * kTileRows + r);
      };
      size_t t = 0;
      for (; t + kT <= n_tokens; t += kT) chunk.template operator()<kT>(t);
      if (kT == 3 && n_tokens - t == 2) {
        chunk.template operator()<2>(t);
      } else if (n_tokens - t == 1) {
        chunk.template operator()<1>(t);
      }
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t r = 0; r < kTileRows; ++r) {
      y[t * y_stride + r] = V::sum(acc[t * kTileRows + r]);
    }
  }
}

// F16 activations as F32, for the F16 tiles (a PackRowFn).
template <typename V>
void widen_f16(const void* x_row, size_t n, void* dst) {
  const auto* x = static_cast<const uint16_t*>(x_row);
  auto* y = static_cast<float*>(dst);
  size_t i = 0;
  for (; i + V::kL <= n; i += V::kL) V::store(y + i, V::f16(x + i, V::kL));
  if (i < n) {
    alignas(64) float tail[V::kL];
    V::store(tail, V::f16(x + i, n - i));
    std::memcpy(y + i, tail, (n - i) * sizeof(float));
  }
}

// The set's F16 and BF16 entries.
template <typename V>
void add_float_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kF16)] = float_dot<V, F16Weights<V>>;
  k.vec_dot[static_cast<size_t>(DType::kBF16)] = float_dot<V, BF16Weights<V>>;
  if constexpr (V::kWidenF16) {
    k.gemm_tile[static_cast<size_t>(DType::kF16)] = float_tile<V, F16Weights<V, float>>;
    k.pack[static_cast<size_t>(DType::kF16)] = widen_f16<V>;
  } else {
    k.gemm_tile[static_cast<size_t>(DType::kF16)] = float_tile<V, F16Weights<V>>;
    k.pack[static_cast<size_t>(DType::kF16)] = nullptr;  // a set built on another's
  }
  k.gemm_tile[static_cast<size_t>(DType::kBF16)] = float_tile<V, BF16Weights<V>>;
}

}  // namespace
}  // namespace slm::isa
