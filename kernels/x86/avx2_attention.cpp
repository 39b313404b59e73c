// AVX2 + FMA + F16C attention over a KV cache (F32, F16 and Q8_0 rows), compiled with the AVX2
// flags and registered by add_avx2_ops: one query at a time (attention, attention_heads,
// attention_softcapped, attention_q8_0) and a prompt's tokens together (attention_causal), every
// head's result bit-identical between them. exp is avx2_vec.h's approximation (max relative
// error 3e-7), so results agree with the references to ~1e-6 relative (tests/simd_ops_test.cpp,
// tests/simd_kv_q8_test.cpp for Q8_0).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_vec.h"

namespace slm::isa {
namespace {

// The element types of a KV cache row (kernels/ref/ops.h).
enum class KvFormat { kF32, kF16, kQ8_0 };

// Q8_0 rows (head_dim a multiple of 32, so d is a multiple of 8): the 8 quants at elements
// [d, d + 8) as floats, and the scale of the block holding element d.
__m256 q8_lanes(const uint8_t* row, size_t d) {
  const auto* block = reinterpret_cast<const BlockQ8_0*>(row) + d / kQK8_0;
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block->qs + d % kQK8_0));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}
float q8_scale(const uint8_t* row, size_t d) {
  return _cvtsh_ss(reinterpret_cast<const BlockQ8_0*>(row)[d / kQK8_0].d);
}

// acc[i] += q · k_i for kKeys Q8_0 rows, block by block: q times the quants summed in float, then
// times the block's scale once (the reference scales each element first; both are the exact
// products' sum to float rounding).
template <size_t kKeys>
void dot_q8_0(const float* q, const uint8_t* const* rows, size_t D, __m256* acc) {
  for (size_t b = 0; b < D; b += kQK8_0) {
    __m256 t[kKeys];
    for (__m256& x : t) x = _mm256_setzero_ps();
    for (size_t d = b; d < b + kQK8_0; d += kL) {
      const __m256 qd = _mm256_loadu_ps(q + d);
      for (size_t i = 0; i < kKeys; ++i) t[i] = _mm256_fmadd_ps(qd, q8_lanes(rows[i], d), t[i]);
    }
    for (size_t i = 0; i < kKeys; ++i) {
      acc[i] = _mm256_fmadd_ps(t[i], _mm256_set1_ps(q8_scale(rows[i], b)), acc[i]);
    }
  }
}

// out = corr · out + Σ_j p_j v_j over n ≤ 64 Q8_0 rows, block by block with the weights
// w_j = p_j · (row j's block scale) formed once per block. The block's 4 vectors of out are
// independent FMA chains (each element still sums its keys in order).
void add_values_q8_0(float* out, float corr, const float* p, const uint8_t* const* rows, size_t n,
                     size_t D) {
  constexpr size_t kVecs = kQK8_0 / kL;
  alignas(32) float w[64];
  for (size_t b = 0; b < D; b += kQK8_0) {
    for (size_t j = 0; j < n; ++j) w[j] = p[j] * q8_scale(rows[j], b);
    __m256 acc[kVecs];
    for (size_t c = 0; c < kVecs; ++c) {
      acc[c] = _mm256_mul_ps(_mm256_loadu_ps(out + b + c * kL), _mm256_set1_ps(corr));
    }
    for (size_t j = 0; j < n; ++j) {
      const __m256 wj = _mm256_set1_ps(w[j]);
      for (size_t c = 0; c < kVecs; ++c) {
        acc[c] = _mm256_fmadd_ps(wj, q8_lanes(rows[j], b + c * kL), acc[c]);
      }
    }
    for (size_t c = 0; c < kVecs; ++c) _mm256_storeu_ps(out + b + c * kL, acc[c]);
  }
}

// Elements [d, d + min(left, 8)) of a head's F32 or F16 row as floats.
template <KvFormat kFormat>
__m256 load_kv(const uint8_t* row, size_t d, size_t left) {
  if constexpr (kFormat == KvFormat::kF16) {
    const auto* h = reinterpret_cast<const uint16_t*>(row) + d;
    if (left >= kL) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
    alignas(16) uint16_t buf[kL] = {};
    std::memcpy(buf, h, left * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  } else {
    return load(reinterpret_cast<const float*>(row) + d, left);
  }
}

constexpr size_t kBlock = 64;  // keys per block of the online softmax (attention_t)

// a[h · kKeys + i] += q_h[d, d + left) · k_i[d, d + left) for kKeys rows and kHeads query heads
// (q_h = q + h · D; left ≤ 8): each key vector is loaded (and converted) once for the heads.
template <KvFormat kFormat, size_t kKeys, size_t kHeads>
[[gnu::always_inline]] inline void add_key_products(const float* q, size_t D,
                                                    const uint8_t* const* rows, size_t d,
                                                    size_t left, __m256* a) {
  __m256 qd[kHeads];
  for (size_t h = 0; h < kHeads; ++h) qd[h] = load(q + h * D + d, left);
  for (size_t i = 0; i < kKeys; ++i) {
    const __m256 kv = load_kv<kFormat>(rows[i], d, left);
    for (size_t h = 0; h < kHeads; ++h) {
      a[h * kKeys + i] = _mm256_fmadd_ps(qd[h], kv, a[h * kKeys + i]);
    }
  }
}

// Σ of a's lanes as ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)): the order the hadds of
// key_scores's groups of 4 give each key.
float hsum_pairs(__m256 a) {
  const __m256 pairs = _mm256_hadd_ps(a, a);          // a0+a1, a2+a3 in each half's low lanes
  const __m256 quads = _mm256_hadd_ps(pairs, pairs);  // (a0+a1)+(a2+a3) in lane 0, (a4+a5)+…
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
}

// p[h · kBlock + i] = scale · (q_h · k_i) for kKeys rows (1, 4 or 8) and kHeads query heads:
// kHeads · kKeys independent accumulators share the loads; each group of 4 reduces with two
// hadds, a single key with hsum_pairs. Lane l of a key's accumulator sums dimensions d ≡ l
// (mod 8) in order, so a key's score is the same in any group, for any number of heads, and in
// transposed_key_scores.
template <KvFormat kFormat, size_t kKeys, size_t kHeads = 1>
void key_scores(const float* q, const uint8_t* const* rows, size_t D, float scale, float* p) {
  __m256 a[kHeads * kKeys];
#pragma GCC unroll 16  // unrolled, not a memset: a stays in registers
  for (__m256& x : a) x = _mm256_setzero_ps();
  if constexpr (kFormat == KvFormat::kQ8_0) {
    static_assert(kHeads == 1, "Q8_0 keys go one head at a time");
    dot_q8_0<kKeys>(q, rows, D, a);
  } else {
    // Whole vectors, then the tail (left < 8 only there: no branch per load).
    size_t d = 0;
    for (; d + kL <= D; d += kL) add_key_products<kFormat, kKeys, kHeads>(q, D, rows, d, kL, a);
    if (d < D) add_key_products<kFormat, kKeys, kHeads>(q, D, rows, d, D - d, a);
  }
  for (size_t h = 0; h < kHeads; ++h) {
    const __m256* ah = a + h * kKeys;
    float* ph = p + h * kBlock;
    if constexpr (kKeys == 1) {
      ph[0] = hsum_pairs(ah[0]) * scale;
    } else {
      for (size_t i = 0; i < kKeys; i += 4) {
        // [Σa_i Σa_i+1 Σa_i+2 Σa_i+3] per 128-bit half; then the halves.
        const __m256 sum4 =
            _mm256_hadd_ps(_mm256_hadd_ps(ah[i], ah[i + 1]), _mm256_hadd_ps(ah[i + 2], ah[i + 3]));
        const __m128 sums =
            _mm_add_ps(_mm256_castps256_ps128(sum4), _mm256_extractf128_ps(sum4, 1));
        _mm_storeu_ps(ph + i, _mm_mul_ps(sums, _mm_set1_ps(scale)));
      }
    }
  }
}

// out_h[0, kVecs · 8) = corr_h · out_h + Σ_j p_h,j v_j[d0, …) over n F32/F16 rows for kHeads
// query heads (out_h = out + h · D, p_h = p + h · kBlock; kVecs = 1 may be a masked tail): out
// stays in kHeads · kVecs registers, independent FMA chains, while the keys stream, each value
// vector loaded once for the heads; each element sums its keys in order.
template <KvFormat kFormat, size_t kVecs, size_t kHeads>
void add_values_span(float* out, const float* corr, const float* p, const uint8_t* const* rows,
                     size_t n, size_t d0, size_t D) {
  const size_t left = kVecs > 1 ? kL : D - d0;  // a constant for the whole spans: no tail code
  // acc[h · kVecs + c]: head h, vector c. Flat, fully unrolled loops keep it in registers (GCC
  // stores a 2-D array, or partly unrolled nests, to memory on every key).
  constexpr size_t kAcc = kHeads * kVecs;
  __m256 acc[kAcc];
#pragma GCC unroll 16
  for (size_t i = 0; i < kAcc; ++i) {
    acc[i] = _mm256_mul_ps(load(out + i / kVecs * D + i % kVecs * kL, left),
                           _mm256_set1_ps(corr[i / kVecs]));
  }
  for (size_t j = 0; j < n; ++j) {
    __m256 pj[kHeads];
    for (size_t h = 0; h < kHeads; ++h) pj[h] = _mm256_set1_ps(p[h * kBlock + j]);
#pragma GCC unroll 16
    for (size_t c = 0; c < kVecs; ++c) {
      const __m256 vj = load_kv<kFormat>(rows[j], d0 + c * kL, left);
#pragma GCC unroll 2
      for (size_t h = 0; h < kHeads; ++h) {
        acc[h * kVecs + c] = _mm256_fmadd_ps(pj[h], vj, acc[h * kVecs + c]);
      }
    }
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < kAcc; ++i) store(out + i / kVecs * D + i % kVecs * kL, left, acc[i]);
}

// add_values_span over whole heads: 64 elements at a time for one head (32 for two), then 32,
// then 8 (masked tail).
template <KvFormat kFormat, size_t kHeads>
void add_values(float* out, const float* corr, const float* p, const uint8_t* const* rows, size_t n,
                size_t D) {
  size_t d = 0;
  if constexpr (kHeads == 1) {
    for (; d + 8 * kL <= D; d += 8 * kL) {
      add_values_span<kFormat, 8, 1>(out + d, corr, p, rows, n, d, D);
    }
  }
  for (; d + 4 * kL <= D; d += 4 * kL) {
    add_values_span<kFormat, 4, kHeads>(out + d, corr, p, rows, n, d, D);
  }
  for (; d < D; d += kL) add_values_span<kFormat, 1, kHeads>(out + d, corr, p, rows, n, d, D);
}

// The online softmax's step over a block's nb scores p (soft-capped first if cap > 0): p becomes
// e^(p − m_new) for the new running max m_new, l_run = l_run · corr + Σ p; returns corr =
// e^(m_old − m_new), the factor the block's output sum is rescaled by.
float softmax_step(float* p, size_t nb, float cap, float& m_run, float& l_run) {
  if (cap > 0) softcap(p, cap, nb);
  const float m_new = std::fmax(m_run, max_of(p, nb));
  // m_run = −inf first: clamps to ~0, l = out = 0
  const float corr = exp_scalar(m_run - m_new);
  __m256 sum = _mm256_setzero_ps();
  for (size_t i = 0; i < nb; i += kL) {
    const size_t m = nb - i;  // elements left
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(load(p + i, m), _mm256_set1_ps(m_new))),
                                   _mm256_castsi256_ps(tail_mask(m)));
    store(p + i, m, e);
    sum = _mm256_add_ps(sum, e);
  }
  l_run = l_run * corr + hsum(sum);
  m_run = m_new;
  return corr;
}

// out[0, D) *= 1 / l: the softmax's normalisation, once at the end.
void divide(float* out, size_t D, float l) {
  const __m256 inv = _mm256_set1_ps(1.0f / l);
  for (size_t d = 0; d < D; d += kL) {
    const size_t m = D - d;  // elements left
    store(out + d, m, _mm256_mul_ps(load(out + d, m), inv));
  }
}

// One block of nb ≤ kBlock keys and values (rows krow, vrow) in the online softmax below, for
// kHeads query heads (q, out: one head after another): the scores into p (kBlock per head), then
// each head's softmax step (m_run, l_run) and its values added into out.
template <KvFormat kFormat, size_t kHeads>
void attention_block(const float* q, const uint8_t* const* krow, const uint8_t* const* vrow,
                     size_t nb, size_t D, float scale, float cap, float* p, float* m_run,
                     float* l_run, float* out) {
  // Keys go 8 at a time for one head; Q8_0 keys, or two heads, 4 at a time: more would need
  // 16 accumulators and spill.
  constexpr size_t kGroup = kFormat == KvFormat::kQ8_0 || kHeads > 1 ? 4 : 8;
  size_t j = 0;
  for (; j + kGroup <= nb; j += kGroup) {
    key_scores<kFormat, kGroup, kHeads>(q, krow + j, D, scale, p + j);
  }
  for (; j + 4 <= nb; j += 4) key_scores<kFormat, 4, kHeads>(q, krow + j, D, scale, p + j);
  for (; j < nb; ++j) key_scores<kFormat, 1, kHeads>(q, krow + j, D, scale, p + j);
  float corr[kHeads];
  for (size_t h = 0; h < kHeads; ++h) {
    corr[h] = softmax_step(p + h * kBlock, nb, cap, m_run[h], l_run[h]);
  }
  if constexpr (kFormat == KvFormat::kQ8_0) {
    add_values_q8_0(out, corr[0], p, vrow, nb, D);
  } else {
    add_values<kFormat, kHeads>(out, corr, p, vrow, nb, D);
  }
}

// A head's running state before its first block: m = −inf, l = 0, out = 0.
void start_rows(float* m_run, float* l_run, float* out, size_t D) {
  *m_run = -INFINITY, *l_run = 0;
  for (size_t d = 0; d < D; d += kL) store(out + d, D - d, _mm256_setzero_ps());
}

// One pass over the keys in blocks of kBlock positions with an online softmax: keeping the
// running max m, the running sum l of e^(s−m) and out = Σ e^(s−m) v, each block rescales l and
// out by e^(m_old − m_new) when its max is larger. Nothing is ever exp'd above 0, so nothing
// overflows, and no n_keys-long score row is needed.
// cap > 0: scores soft-capped (attention_softcapped). kFormat: the cache's element type.
// kHeads (1 or 2) query heads that read the same rows (q, out: one head after another) share
// each key and value vector as it is loaded; each head's result is what it gets alone.
template <KvFormat kFormat, size_t kHeads = 1>
void attention_t(const float* q, const ref::KvRows& k, const ref::KvRows& v, size_t n_keys,
                 size_t D, float scale, float cap, float* out) {
  const uint8_t* krow[kBlock];
  const uint8_t* vrow[kBlock];
  alignas(32) float p[kHeads * kBlock];
  float m_run[kHeads], l_run[kHeads];
  for (size_t h = 0; h < kHeads; ++h) start_rows(&m_run[h], &l_run[h], out + h * D, D);
  for (size_t j0 = 0; j0 < n_keys; j0 += kBlock) {
    const size_t nb = std::min(kBlock, n_keys - j0);
    k.rows(j0, nb, krow);
    v.rows(j0, nb, vrow);
    attention_block<kFormat, kHeads>(q, krow, vrow, nb, D, scale, cap, p, m_run, l_run, out);
  }
  for (size_t h = 0; h < kHeads; ++h) divide(out + h * D, D, l_run[h]);
}

void attention(const float* q, const ref::KvRows& k, const ref::KvRows& v, bool kv_is_f16,
               size_t n_keys, size_t head_dim, float scale, float* /*scores*/, float* out) {
  if (kv_is_f16)
    attention_t<KvFormat::kF16>(q, k, v, n_keys, head_dim, scale, 0, out);
  else
    attention_t<KvFormat::kF32>(q, k, v, n_keys, head_dim, scale, 0, out);
}

// Pairs of heads, then the odd one alone.
void attention_heads(const float* q, size_t n_heads, const ref::KvRows& k, const ref::KvRows& v,
                     bool kv_is_f16, size_t n_keys, size_t head_dim, float scale, float* out) {
  const size_t D = head_dim;
  size_t h = 0;
  for (; h + 2 <= n_heads; h += 2) {
    if (kv_is_f16)
      attention_t<KvFormat::kF16, 2>(q + h * D, k, v, n_keys, D, scale, 0, out + h * D);
    else
      attention_t<KvFormat::kF32, 2>(q + h * D, k, v, n_keys, D, scale, 0, out + h * D);
  }
  if (h < n_heads) {
    if (kv_is_f16)
      attention_t<KvFormat::kF16>(q + h * D, k, v, n_keys, D, scale, 0, out + h * D);
    else
      attention_t<KvFormat::kF32>(q + h * D, k, v, n_keys, D, scale, 0, out + h * D);
  }
}

void attention_softcapped(const float* q, const ref::KvRows& k, const ref::KvRows& v,
                          bool kv_is_f16, size_t n_keys, size_t head_dim, float scale, float cap,
                          float* /*scores*/, float* out) {
  if (kv_is_f16)
    attention_t<KvFormat::kF16>(q, k, v, n_keys, head_dim, scale, cap, out);
  else
    attention_t<KvFormat::kF32>(q, k, v, n_keys, head_dim, scale, cap, out);
}

void attention_q8_0(const float* q, const ref::KvRows& k, const ref::KvRows& v, size_t n_keys,
                    size_t head_dim, float scale, float cap, float* /*scores*/, float* out) {
  attention_t<KvFormat::kQ8_0>(q, k, v, n_keys, head_dim, scale, cap, out);
}

// Causal attention for a prompt (OpsSet::attention_causal). Token t's rows see t more keys than
// token 0's; the keys are read a block of kBlock positions at a time, converted to F32 once for
// every row of every token, and every row then takes attention_t's steps over the block: the
// same scores (below), softmax_step and add_values, so the same bits. Converting once instead of
// per row, and scoring several keys per vector without hadds, is what makes it faster.
constexpr size_t kMaxCausalD = 128;     // larger heads go row by row through attention_t
constexpr size_t kMaxCausalRows = 256;  // tokens × heads per pass (more go in several)

// r[l] lane i = r[i] lane l: an 8 × 8 transpose.
void transpose8(__m256* r) {
  __m256 t[kL], u[kL];
  for (size_t i = 0; i < kL; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // r_i,0 r_i+1,0 r_i,1 r_i+1,1 | 4, 5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // 2, 3 | 6, 7
  }
  for (size_t i = 0; i < kL; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);          // rows i..i+3, lane 0 | lane 4
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);      // 1 | 5
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // 2 | 6
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // 3 | 7
  }
  for (size_t l = 0; l < 4; ++l) {
    r[l] = _mm256_permute2f128_ps(u[l], u[l + 4], 0x20);
    r[l + 4] = _mm256_permute2f128_ps(u[l], u[l + 4], 0x31);
  }
}

// Keys [0, n) of a block as F32, in chunks of `width` keys (8 or 16): kt[(c · D + d) · width + i]
// = element d of key c · width + i (0 for keys past n), so that one vector holds one dimension
// of a chunk's keys.
template <KvFormat kFormat>
void transpose_keys(const uint8_t* const* rows, size_t n, size_t D, size_t width, float* kt) {
  const size_t keys = (n + width - 1) / width * width;
  for (size_t k0 = 0; k0 < keys; k0 += kL) {
    float* chunk = kt + k0 / width * D * width + k0 % width;
    for (size_t d = 0; d < D; d += kL) {
      __m256 r[kL];
      for (size_t i = 0; i < kL; ++i) {
        r[i] = k0 + i < n ? load_kv<kFormat>(rows[k0 + i], d, kL) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (size_t l = 0; l < kL; ++l) _mm256_storeu_ps(chunk + (d + l) * width, r[l]);
    }
  }
}

// p[0, n) = scale · (q · k_i) over transpose_keys's chunks of 8: lane i of a[l] sums dimensions
// d ≡ l (mod 8) of key i in order, and the lanes are summed in hsum_pairs's order, as
// key_scores sums a key's lanes; p is written in whole chunks (up to 7 floats past n).
void key_scores_row(const float* q, const float* kt, size_t n, size_t D, float scale, float* p) {
  for (size_t c = 0; c * kL < n; ++c, kt += D * kL) {
    __m256 a[kL];
    for (__m256& x : a) x = _mm256_setzero_ps();
    for (size_t d = 0; d < D; d += kL) {
#pragma GCC unroll 8
      for (size_t l = 0; l < kL; ++l) {
        a[l] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d + l), _mm256_load_ps(kt + (d + l) * kL),
                               a[l]);
      }
    }
    const __m256 low = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    const __m256 high = _mm256_add_ps(_mm256_add_ps(a[4], a[5]), _mm256_add_ps(a[6], a[7]));
    _mm256_storeu_ps(p + c * kL, _mm256_mul_ps(_mm256_add_ps(low, high), _mm256_set1_ps(scale)));
  }
}

// Row by row: two rows would need 16 accumulators, all the registers there are.
void transposed_key_scores(const float* const* q, size_t rows, const float* kt, size_t n, size_t D,
                           float scale, float* const* p) {
  for (size_t r = 0; r < rows; ++r) key_scores_row(q[r], kt, n, D, scale, p[r]);
}

float causal_softmax(float* p, size_t n, float& m_run, float& l_run) {
  return softmax_step(p, n, 0, m_run, l_run);
}

void add_value_rows(float* const* out, size_t rows, const float* corr, const float* const* p,
                    const size_t* n, const uint8_t* const* v, size_t D) {
  for (size_t r = 0; r < rows; ++r)
    add_values<KvFormat::kF32, 1>(out[r], &corr[r], p[r], v, n[r], D);
}

template <KvFormat kFormat>
void attention_causal_t(const CausalSteps& steps, const float* q, size_t q_stride, size_t n_heads,
                        size_t n_tokens, size_t n_keys0, const ref::KvRows& k, const ref::KvRows& v,
                        size_t D, float scale, float cap, float* out, size_t out_stride) {
  const auto row_q = [&](size_t t, size_t h) { return q + t * q_stride + h * D; };
  const auto row_out = [&](size_t t, size_t h) { return out + t * out_stride + h * D; };
  if (n_tokens * n_heads > kMaxCausalRows && n_heads <= kMaxCausalRows) {
    const size_t chunk = kMaxCausalRows / n_heads;  // tokens at a time
    for (size_t t = 0; t < n_tokens; t += chunk) {
      attention_causal_t<kFormat>(steps, row_q(t, 0), q_stride, n_heads,
                                  std::min(chunk, n_tokens - t), n_keys0 + t, k, v, D, scale, cap,
                                  row_out(t, 0), out_stride);
    }
    return;
  }
  if (n_heads > kMaxCausalRows) {
    for (size_t t = 0; t < n_tokens; ++t) {
      for (size_t h = 0; h < n_heads; ++h) {
        attention_t<kFormat>(row_q(t, h), k, v, n_keys0 + t, D, scale, cap, row_out(t, h));
      }
    }
    return;
  }
  const uint8_t* krow[kBlock];
  const uint8_t* vrow[kBlock];
  float m_run[kMaxCausalRows], l_run[kMaxCausalRows];
  for (size_t r = 0; r < n_tokens * n_heads; ++r) {
    start_rows(&m_run[r], &l_run[r], row_out(r / n_heads, r % n_heads), D);
  }
  const size_t n_keys = n_keys0 + n_tokens - 1;  // the last token's
  // The tokens that see key j0 onwards (n_keys0 + t > j0) and how many of the block's keys.
  const auto first_token = [&](size_t j0) { return j0 < n_keys0 ? 0 : j0 - n_keys0 + 1; };
  const auto block_keys = [&](size_t t, size_t j0) { return std::min(kBlock, n_keys0 + t - j0); };
  if (D % kL != 0 || D > kMaxCausalD) {
    // Heads too wide for the transposed block (Gemma's 256), or not whole vectors: every row
    // takes attention_t's own block step over the cache rows, block by block, while the block is
    // in cache.
    alignas(32) float p[kBlock];
    for (size_t j0 = 0; j0 < n_keys; j0 += kBlock) {
      const size_t nb_all = std::min(kBlock, n_keys - j0);
      k.rows(j0, nb_all, krow);
      v.rows(j0, nb_all, vrow);
      for (size_t t = first_token(j0); t < n_tokens; ++t) {
        for (size_t h = 0; h < n_heads; ++h) {
          const size_t r = t * n_heads + h;
          attention_block<kFormat, 1>(row_q(t, h), krow, vrow, block_keys(t, j0), D, scale, cap, p,
                                      &m_run[r], &l_run[r], row_out(t, h));
        }
      }
    }
  } else {
    alignas(64) float kt[kBlock * kMaxCausalD];  // the block's keys, transposed
    alignas(32) float vf[kBlock * kMaxCausalD];  // its values, row after row
    alignas(32) float p[2 * kBlock];
    const uint8_t* vf_row[kBlock];
    for (size_t j0 = 0; j0 < n_keys; j0 += kBlock) {
      const size_t nb_all = std::min(kBlock, n_keys - j0);
      k.rows(j0, nb_all, krow);
      v.rows(j0, nb_all, vrow);
      transpose_keys<kFormat>(krow, nb_all, D, steps.width, kt);
      for (size_t j = 0; j < nb_all; ++j) {
        for (size_t d = 0; d < D; d += kL) {
          _mm256_store_ps(vf + j * D + d, load_kv<kFormat>(vrow[j], d, kL));
        }
        vf_row[j] = reinterpret_cast<const uint8_t*>(vf + j * D);
      }
      // Two tokens at a time: each head of tokens t and t + 1 scored together over the keys
      // the later one sees.
      for (size_t t = first_token(j0); t < n_tokens; t += 2) {
        const size_t rows = std::min<size_t>(2, n_tokens - t);
        for (size_t h = 0; h < n_heads; ++h) {
          const float* q_rows[2] = {row_q(t, h), row_q(t + rows - 1, h)};
          float* p_rows[2] = {p, p + kBlock};
          float* out_rows[2] = {row_out(t, h), row_out(t + rows - 1, h)};
          size_t nb[2];
          float corr[2];
          for (size_t i = 0; i < rows; ++i) nb[i] = block_keys(t + i, j0);
          steps.scores(q_rows, rows, kt, nb[rows - 1], D, scale, p_rows);
          for (size_t i = 0; i < rows; ++i) {
            const size_t r = (t + i) * n_heads + h;
            // The soft-cap here, with this set's softcap, as attention_t's softmax_step does.
            if (cap > 0) softcap(p_rows[i], cap, nb[i]);
            corr[i] = steps.softmax(p_rows[i], nb[i], m_run[r], l_run[r]);
          }
          steps.values(out_rows, rows, corr, p_rows, nb, vf_row, D);
        }
      }
    }
  }
  for (size_t r = 0; r < n_tokens * n_heads; ++r) {
    divide(row_out(r / n_heads, r % n_heads), D, l_run[r]);
  }
}

void attention_causal(const float* q, size_t q_stride, size_t n_heads, size_t n_tokens,
                      size_t n_keys0, const ref::KvRows& k, const ref::KvRows& v, bool kv_is_f16,
                      size_t head_dim, float scale, float cap, float* out, size_t out_stride) {
  avx2_attention_causal({transposed_key_scores, kL, causal_softmax, add_value_rows}, q, q_stride,
                        n_heads, n_tokens, n_keys0, k, v, kv_is_f16, head_dim, scale, cap, out,
                        out_stride);
}

}  // namespace

void avx2_attention_causal(const CausalSteps& steps, const float* q, size_t q_stride,
                           size_t n_heads, size_t n_tokens, size_t n_keys0, const ref::KvRows& k,
                           const ref::KvRows& v, bool kv_is_f16, size_t head_dim, float scale,
                           float cap, float* out, size_t out_stride) {
  if (kv_is_f16) {
    attention_causal_t<KvFormat::kF16>(steps, q, q_stride, n_heads, n_tokens, n_keys0, k, v,
                                       head_dim, scale, cap, out, out_stride);
  } else {
    attention_causal_t<KvFormat::kF32>(steps, q, q_stride, n_heads, n_tokens, n_keys0, k, v,
                                       head_dim, scale, cap, out, out_stride);
  }
}

void add_avx2_attention(OpsSet& ops) {
  ops.attention = attention;
  ops.attention_heads = attention_heads;
  ops.attention_causal = attention_causal;
  ops.attention_softcapped = attention_softcapped;
  ops.attention_q8_0 = attention_q8_0;
}

}  // namespace slm::isa
