// AVX2 + FMA + F16C versions of the forward pass's element-wise and row ops (formulas in
// kernels/ref/ops.h), compiled with the AVX2 flags; dispatch.cpp registers them only on CPUs that
// have them. Tails go through the same vector code (masked loads/stores, or a small buffer for
// fp16), so an element's value does not depend on where a row or chunk starts.
//
// Agreement with the references (tests/simd_ops_test.cpp):
//   - rope: bit-identical (same products and sums, no contraction: -ffp-contract=off);
//   - rms_norm, layer_norm: the same double sums in another order, then the same float ops;
//   - softmax, swiglu, gelu, softcap: exp is avx2_vec.h's approximation, max relative error
//     3e-7 over its range (vs 1 ulp for libm), so results agree to ~1e-6 relative (softcap:
//     within 2e-7 · cap absolute).
// Attention is avx2_attention.cpp's.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/x86/avx2_vec.h"

namespace slm::isa {
namespace {

void rms_norm(const float* x, const float* w, float eps, float* y, size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (size_t i = 0; i < n; i += kL) {
    const __m256 v = load(x + i, n - i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    s0 = _mm256_fmadd_pd(lo, lo, s0);  // float² is exact in double: only the adds round
    s1 = _mm256_fmadd_pd(hi, hi, s1);
  }
  const double sum_sq = hsum_pd(_mm256_add_pd(s0, s1));
  const __m256 scale = _mm256_set1_ps(1.0f / std::sqrt(float(sum_sq / double(n)) + eps));
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    __m256 v = _mm256_mul_ps(load(x + i, m), scale);
    if (w) v = _mm256_mul_ps(v, load(w + i, m));
    store(y + i, m, v);
  }
}

// The reference's double sums (Σx, then Σ(x − mean)² with the difference taken in double) in
// another order; then its float steps, lane by lane: ((x − m) · scale) · w + b.
void layer_norm(const float* x, const float* w, const float* b, float eps, float* y, size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (size_t i = 0; i < n; i += kL) {  // masked lanes load 0: they add nothing
    const __m256 v = load(x + i, n - i);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  const double mean = hsum_pd(_mm256_add_pd(s0, s1)) / double(n);
  const __m256d mean_pd = _mm256_set1_pd(mean);
  s0 = s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + kL <= n; i += kL) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mean_pd);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mean_pd);
    s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
    s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
  }
  double sum_sq = hsum_pd(_mm256_add_pd(s0, s1));
  for (; i < n; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
  const __m256 scale = _mm256_set1_ps(1.0f / std::sqrt(float(sum_sq / double(n)) + eps));
  const __m256 m = _mm256_set1_ps(float(mean));
  for (i = 0; i < n; i += kL) {
    const size_t left = n - i;
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(load(x + i, left), m), scale);
    if (w) v = _mm256_mul_ps(v, load(w + i, left));
    if (b) v = _mm256_add_ps(v, load(b + i, left));
    store(y + i, left, v);
  }
}

// (a, b) -> (a c − b s, a s + b c) on adjacent pairs: with h = [a b …], cs = [c s …],
// t1 = h·[c c …], t2 = [b a …]·[s s …]; even lanes t1 − t2, odd lanes t1 + t2 (addsub).
void rope_interleaved(float* head, const float* cs, size_t n_rot) {
  for (size_t i = 0; i < n_rot; i += kL) {
    const size_t m = n_rot - i;  // elements left
    const __m256 h = load(head + i, m), t = load(cs + i, m);
    const __m256 t1 = _mm256_mul_ps(h, _mm256_moveldup_ps(t));
    const __m256 t2 = _mm256_mul_ps(_mm256_permute_ps(h, 0xB1), _mm256_movehdup_ps(t));
    store(head + i, m, _mm256_addsub_ps(t1, t2));
  }
}

// Pairs (i, i + half); cs holds (cos, sin) interleaved, split here into two vectors.
void rope_half_split(float* head, const float* cs, size_t n_rot) {
  const size_t half = n_rot / 2;
  const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (size_t i = 0; i < half; i += kL) {
    const size_t left = half - i;
    // [c0 s0 … c3 s3] → [c0..c3 s0..s3], likewise the next four pairs.
    const __m256 p0 = _mm256_permutevar8x32_ps(load(cs + 2 * i, 2 * left), split);
    const __m256 p1 = _mm256_permutevar8x32_ps(
        left > 4 ? load(cs + 2 * i + kL, 2 * left - kL) : _mm256_setzero_ps(), split);
    const __m256 c = _mm256_permute2f128_ps(p0, p1, 0x20), s = _mm256_permute2f128_ps(p0, p1, 0x31);
    const __m256 a = load(head + i, left), b = load(head + i + half, left);
    store(head + i, left, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
    store(head + i + half, left, _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
  }
}

void softmax(float* x, size_t n) {
  const __m256 mx = _mm256_set1_ps(max_of(x, n));
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(load(x + i, m), mx)), _mm256_castsi256_ps(tail_mask(m)));
    store(x + i, m, e);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  const __m256 inv = _mm256_set1_ps(float(1.0 / hsum_pd(_mm256_add_pd(s0, s1))));
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    store(x + i, m, _mm256_mul_ps(load(x + i, m), inv));
  }
}

void swiglu(const float* g, const float* u, float* y, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    const __m256 gv = load(g + i, m);
    const __m256 silu = _mm256_div_ps(gv, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), gv))));
    store(y + i, m, _mm256_mul_ps(silu, load(u + i, m)));
  }
}

// 0.5 (1 + tanh z) = 1 / (1 + e^(−2z)): the same function without tanh's cancellation near −1.
void gelu(const float* x, float* y, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(0.044715f);
  const __m256 minus_2k = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    const __m256 v = load(x + i, m);
    const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
    const __m256 e = exp_ps(_mm256_mul_ps(minus_2k, inner));
    store(y + i, m, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
}

// gelu(g) ⊙ u, gelu as above.
void geglu(const float* g, const float* u, float* y, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(0.044715f);
  const __m256 minus_2k = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    const __m256 v = load(g + i, m);
    const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
    const __m256 e = exp_ps(_mm256_mul_ps(minus_2k, inner));
    store(y + i, m, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), load(u + i, m)));
  }
}

void add(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; i += kL) {
    const size_t m = n - i;  // elements left
    store(y + i, m, _mm256_add_ps(load(y + i, m), load(x + i, m)));
  }
}

}  // namespace

void add_avx2_ops(OpsSet& ops) {
  ops.rms_norm = rms_norm;
  ops.layer_norm = layer_norm;
  ops.rope_interleaved = rope_interleaved;
  ops.rope_half_split = rope_half_split;
  ops.softmax = softmax;
  ops.swiglu = swiglu;
  ops.gelu = gelu;
  ops.geglu = geglu;
  ops.add = add;
  ops.softcap = softcap;
  add_avx2_attention(ops);
}

}  // namespace slm::isa
