// The float-vector helpers of the AVX2 forward-pass ops (avx2_ops.cpp) and attention
// (avx2_attention.cpp): 8-lane loads and stores with masked tails, horizontal sums, and exp. Only
// for translation units compiled with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "kernels/exp_approx.h"

namespace slm::isa {
namespace {

constexpr size_t kL = 8;  // floats per vector

// Lanes [0, n) set (all when n ≥ 8), for maskload/maskstore.
inline __m256i tail_mask(size_t n) {
  const int k = n >= kL ? int(kL) : int(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// Loads / stores min(left, 8) floats: whole vectors plainly, the tail masked (the branch is
// taken once per row).
inline __m256 load(const float* p, size_t left) {
  return left >= kL ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(left));
}
inline void store(float* p, size_t left, __m256 v) {
  if (left >= kL)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, tail_mask(left), v);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x lane by lane: kernels/exp_approx.h's approximation (max relative error ≈ 3e-7).
inline __m256 exp_ps(__m256 x) {
  using namespace exp_approx;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kMin)), _mm256_set1_ps(kMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2High), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Low), r);
  __m256 p = _mm256_set1_ps(kTaylor[0]);
  for (size_t i = 1; i < std::size(kTaylor); ++i) {
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kTaylor[i]));
  }
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

inline float exp_scalar(float x) { return _mm256_cvtss_f32(exp_ps(_mm256_set1_ps(x))); }

// In place: p = cap · tanh(p / cap), tanh(y) = sign(y) (1 − 2 / (e^(2|y|) + 1))
// (absolute error within 2e-7 · cap; where e^(2|y|) is huge the quotient is 0 and tanh 1).
inline void softcap(float* p, float cap, size_t n) {
  const __m256 inv2 = _mm256_set1_ps(2.0f / cap), capv = _mm256_set1_ps(cap);
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (size_t j = 0; j < n; j += kL) {
    const size_t m = n - j;  // elements left
    const __m256 x = load(p + j, m);
    const __m256 sign = _mm256_and_ps(x, sign_bit);
    const __m256 e = exp_ps(_mm256_mul_ps(_mm256_andnot_ps(sign_bit, x), inv2));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
    store(p + j, m, _mm256_mul_ps(capv, _mm256_or_ps(t, sign)));
  }
}

inline float max_of(const float* x, size_t n) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    mx = _mm256_blendv_ps(mx, _mm256_max_ps(mx, load(x + i, m)), _mm256_castsi256_ps(tail_mask(m)));
  }
  return hmax(mx);
}

}  // namespace
}  // namespace slm::isa
