// AVX-512 versions of the forward pass's element-wise and row ops (formulas in kernels/ref/ops.h),
// compiled with the AVX-512 flags; dispatch.cpp registers them only on CPUs that have them.
// Tails use masked loads and stores, so every element goes through the same formula and an
// element's value does not depend on where a row or chunk starts.
//
// Agreement with the references (tests/simd_ops_test.cpp):
//   - rope: bit-identical (same products and sums, no contraction: -ffp-contract=off);
//   - rms_norm: the same double sum of exact squares in another order, then the same float ops;
//   - softmax, swiglu, gelu: exp is the approximation below, max relative error 3e-7 over its
//     range (vs 1 ulp for libm), so results agree to ~1e-6 relative.
// Attention stays the AVX2 set's: a 16-lane version that stood here (4 keys per score pass, one
// FMA chain per output vector) ran slower on an AVX-512 Zen 4 (BM_Attention/f16/512, 32 heads:
// 108-119 M head-keys/s against 153 M for AVX2's; SmolLM2-135M Q4_0 pp512 +5-10 % without it).
// Only a prompt's (attention_causal) key scores and value sums are done here, 16 keys or
// elements per vector for two rows at once, inside the AVX2 set's pass: with its rows converted
// to F32 once, loads bound those steps, and these halve them.
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "kernels/exp_approx.h"
#include "kernels/isa_kernels.h"

namespace slm::isa {
namespace {

constexpr size_t kL = 16;  // floats per vector

__mmask16 tail_mask(size_t n) { return n >= kL ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// e^x lane by lane: kernels/exp_approx.h's approximation (max relative error ≈ 3e-7), the
// scaling by 2^n one vscalefps.
__m512 exp_ps(__m512 x) {
  using namespace exp_approx;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kMin)), _mm512_set1_ps(kMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Low), r);
  __m512 p = _mm512_set1_ps(kTaylor[0]);
  for (size_t i = 1; i < std::size(kTaylor); ++i) {
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kTaylor[i]));
  }
  return _mm512_scalef_ps(p, n);
}

void rms_norm(const float* x, const float* w, float eps, float* y, size_t n) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i += kL) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    s0 = _mm512_fmadd_pd(lo, lo, s0);  // float² is exact in double: only the adds round
    s1 = _mm512_fmadd_pd(hi, hi, s1);
  }
  const double sum_sq = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  const __m512 scale = _mm512_set1_ps(1.0f / std::sqrt(float(sum_sq / double(n)) + eps));
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
    if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

// (a, b) -> (a c − b s, a s + b c) on adjacent pairs: with h = [a b …], cs = [c s …],
// t1 = h·[c c …], t2 = [b a …]·[s s …]; even lanes t1 − t2, odd lanes t1 + t2.
void rope_interleaved(float* head, const float* cs, size_t n_rot) {
  for (size_t i = 0; i < n_rot; i += kL) {
    const __mmask16 m = tail_mask(n_rot - i);
    const __m512 h = _mm512_maskz_loadu_ps(m, head + i), t = _mm512_maskz_loadu_ps(m, cs + i);
    const __m512 t1 = _mm512_mul_ps(h, _mm512_moveldup_ps(t));
    const __m512 t2 = _mm512_mul_ps(_mm512_permute_ps(h, 0xB1), _mm512_movehdup_ps(t));
    const __m512 r = _mm512_mask_sub_ps(_mm512_add_ps(t1, t2), __mmask16(0x5555), t1, t2);
    _mm512_mask_storeu_ps(head + i, m, r);
  }
}

// Pairs (i, i + half); cs holds (cos, sin) interleaved, split here into two vectors.
void rope_half_split(float* head, const float* cs, size_t n_rot) {
  const size_t half = n_rot / 2;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (size_t i = 0; i < half; i += kL) {
    const size_t left = half - i;
    const __mmask16 m = tail_mask(left);
    const __m512 t0 = _mm512_maskz_loadu_ps(tail_mask(2 * left), cs + 2 * i);
    const __m512 t1 = _mm512_maskz_loadu_ps(left > 8 ? tail_mask(2 * left - kL) : 0, cs + 2 * i + kL);
    const __m512 c = _mm512_permutex2var_ps(t0, even, t1), s = _mm512_permutex2var_ps(t0, odd, t1);
    const __m512 a = _mm512_maskz_loadu_ps(m, head + i), b = _mm512_maskz_loadu_ps(m, head + i + half);
    _mm512_mask_storeu_ps(head + i, m, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
    _mm512_mask_storeu_ps(head + i + half, m, _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
  }
}

float max_of(const float* x, size_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (size_t i = 0; i < n; i += kL) {
    mx = _mm512_mask_max_ps(mx, tail_mask(n - i), mx, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  }
  return _mm512_reduce_max_ps(mx);
}

void softmax(float* x, size_t n) {
  const __m512 mx = _mm512_set1_ps(max_of(x, n));
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx)));
    _mm512_mask_storeu_ps(x + i, m, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  const __m512 inv = _mm512_set1_ps(float(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

void swiglu(const float* g, const float* u, float* y, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 silu = _mm512_div_ps(gv, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, u + i)));
  }
}

// 0.5 (1 + tanh z) = 1 / (1 + e^(−2z)): the same function without tanh's cancellation near −1.
void gelu(const float* x, float* y, size_t n) {
  const __m512 one = _mm512_set1_ps(1.0f), c = _mm512_set1_ps(0.044715f);
  const __m512 minus_2k = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(c, v), _mm512_mul_ps(v, v), v);
    const __m512 e = exp_ps(_mm512_mul_ps(minus_2k, inner));
    _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(v, _mm512_add_ps(one, e)));
  }
}

void add(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
  }
}

// CausalSteps::scores over chunks of 16 keys, for one or two rows: lane i of a[l] sums dimensions
// d ≡ l (mod 8) of key i in order, then ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), as
// the AVX2 set's key_scores_row does over 8. Each 16-key operand serves both rows: one
// load per FMA and a broadcast, which is what the loads allow.
template <size_t kRows>
void key_scores_rows(const float* const* q, const float* kt, size_t n, size_t D, float scale,
                     float* const* p) {
  constexpr size_t kResidues = 8;
  for (size_t c = 0; c * kL < n; ++c, kt += D * kL) {
    __m512 a[kRows][kResidues];
    for (auto& row : a) {
      for (__m512& x : row) x = _mm512_setzero_ps();
    }
    for (size_t d = 0; d < D; d += kResidues) {
#pragma GCC unroll 8
      for (size_t l = 0; l < kResidues; ++l) {
        __m512 k = _mm512_load_ps(kt + (d + l) * kL);
        asm("" : "+v"(k));  // one load for both rows (GCC would fold it into each FMA)
        for (size_t r = 0; r < kRows; ++r) {
          a[r][l] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d + l]), k, a[r][l]);
        }
      }
    }
    for (size_t r = 0; r < kRows; ++r) {
      const __m512 low =
          _mm512_add_ps(_mm512_add_ps(a[r][0], a[r][1]), _mm512_add_ps(a[r][2], a[r][3]));
      const __m512 high =
          _mm512_add_ps(_mm512_add_ps(a[r][4], a[r][5]), _mm512_add_ps(a[r][6], a[r][7]));
      _mm512_storeu_ps(p[r] + c * kL,
                       _mm512_mul_ps(_mm512_add_ps(low, high), _mm512_set1_ps(scale)));
    }
  }
}

void transposed_key_scores(const float* const* q, size_t rows, const float* kt, size_t n, size_t D,
                           float scale, float* const* p) {
  if (rows == 2)
    key_scores_rows<2>(q, kt, n, D, scale, p);
  else
    key_scores_rows<1>(q, kt, n, D, scale, p);
}

// CausalSteps::softmax: avx2_attention.cpp's softmax_step (without soft-capping), the same bits, 16
// scores per vector: the same exp per element, the sum still formed 8 lanes at a time in order
// and reduced in hsum's order there.
float causal_softmax(float* p, size_t n, float& m_run, float& l_run) {
  const float m_new = std::fmax(m_run, max_of(p, n));
  // m_run = −inf first: clamps to ~0, l = out = 0
  const float corr = _mm512_cvtss_f32(exp_ps(_mm512_set1_ps(m_run - m_new)));
  __m256 sum = _mm256_setzero_ps();
  for (size_t i = 0; i < n; i += kL) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(
        m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + i), _mm512_set1_ps(m_new))));
    _mm512_mask_storeu_ps(p + i, m, e);
    sum = _mm256_add_ps(sum, _mm512_castps512_ps256(e));
    if (n - i > kL / 2)
      sum = _mm256_add_ps(sum, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  l_run = l_run * corr + _mm_cvtss_f32(s);
  m_run = m_new;
  return corr;
}

// CausalSteps::values, 16 elements per vector: each value vector loaded once for both rows
// (the later row's last key, which the earlier one does not see, alone).
template <size_t kRows, size_t kVecs>
void add_values_span(float* const* out, const float* corr, const float* const* p, const size_t* n,
                     const uint8_t* const* v, size_t d0, size_t D) {
  const __mmask16 m = kVecs > 1 ? __mmask16(0xFFFF) : tail_mask(D - d0);
  // acc[c · kRows + r]: row r, vector c. Flat, fully unrolled loops keep it in registers.
  constexpr size_t kAcc = kRows * kVecs;
  __m512 acc[kAcc];
#pragma GCC unroll 8
  for (size_t i = 0; i < kAcc; ++i) {
    acc[i] = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out[i % kRows] + d0 + i / kRows * kL),
                           _mm512_set1_ps(corr[i % kRows]));
  }
  // Value vectors [0, kVecs) of key j, each loaded once (GCC would fold a load into each FMA).
  const auto values = [&](size_t j, __m512* vj) {
    const auto* row = reinterpret_cast<const float*>(v[j]) + d0;
#pragma GCC unroll 4
    for (size_t c = 0; c < kVecs; ++c) {
      vj[c] = _mm512_maskz_loadu_ps(m, row + c * kL);
      asm("" : "+v"(vj[c]));
    }
  };
  size_t j = 0;
  for (; j < n[0]; ++j) {
    __m512 vj[kVecs];
    values(j, vj);
#pragma GCC unroll 8
    for (size_t i = 0; i < kAcc; ++i) {
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(p[i % kRows][j]), vj[i / kRows], acc[i]);
    }
  }
  for (; j < n[kRows - 1]; ++j) {  // the last row's keys that the others do not see
    __m512 vj[kVecs];
    values(j, vj);
#pragma GCC unroll 4
    for (size_t c = 0; c < kVecs; ++c) {
      const size_t i = c * kRows + kRows - 1;
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(p[kRows - 1][j]), vj[c], acc[i]);
    }
  }
#pragma GCC unroll 8
  for (size_t i = 0; i < kAcc; ++i) {
    _mm512_mask_storeu_ps(out[i % kRows] + d0 + i / kRows * kL, m, acc[i]);
  }
}

template <size_t kRows>
void add_values_rows(float* const* out, const float* corr, const float* const* p, const size_t* n,
                     const uint8_t* const* v, size_t D) {
  size_t d = 0;
  for (; d + 4 * kL <= D; d += 4 * kL) add_values_span<kRows, 4>(out, corr, p, n, v, d, D);
  for (; d < D; d += kL) add_values_span<kRows, 1>(out, corr, p, n, v, d, D);
}

void add_value_rows(float* const* out, size_t rows, const float* corr, const float* const* p,
                    const size_t* n, const uint8_t* const* v, size_t D) {
  if (rows == 2)
    add_values_rows<2>(out, corr, p, n, v, D);
  else
    add_values_rows<1>(out, corr, p, n, v, D);
}

void attention_causal(const float* q, size_t q_stride, size_t n_heads, size_t n_tokens,
                      size_t n_keys0, const ref::KvRows& k, const ref::KvRows& v, bool kv_is_f16,
                      size_t head_dim, float scale, float cap, float* out, size_t out_stride) {
  avx2_attention_causal({transposed_key_scores, kL, causal_softmax, add_value_rows}, q, q_stride,
                        n_heads, n_tokens, n_keys0, k, v, kv_is_f16, head_dim, scale, cap, out,
                        out_stride);
}

}  // namespace

void add_avx512_ops(OpsSet& ops) {
  ops.rms_norm = rms_norm;
  ops.rope_interleaved = rope_interleaved;
  ops.rope_half_split = rope_half_split;
  ops.softmax = softmax;
  ops.swiglu = swiglu;
  ops.gelu = gelu;
  ops.add = add;
  ops.attention_causal = attention_causal;
}

}  // namespace slm::isa
