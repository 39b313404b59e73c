// Baseline ASIMD attention over a KV cache (formula in kernels/ref/ops.h).
//
// F32 and F16 rows (the default cache): one pass over the keys in blocks of kBlock positions with
// an online softmax, as the x86 sets do (kernels/x86/avx2_attention.cpp): a running max m, a
// running sum l of e^(s−m) and out = Σ e^(s−m) v, rescaled by e^(m_old − m_new) when a block
// raises the max, so nothing is exp'd above 0 and no n_keys-long score row is needed. exp is a
// degree-7 polynomial after a range reduction (max relative error ≈ 3e-7), the same one as the
// x86 sets' (neon_vec.h), and so is the soft-cap's tanh built on it. Results agree with the
// reference to ~1e-6 relative, plus the tanh's ≈ 2e-7 · cap (tests/simd_ops_test.cpp).
//
// Q8_0 rows: two passes like the reference: the scores by 4-lane dots of q with the dequantized
// keys, the soft-cap above and the reference's softmax over them (in `scores`), then Σ_j p_j · v_j
// in 4-lane vectors. The dequantized elements d·q are exact, so only the order of the dots' float
// additions (and fused multiply-adds) differs from the reference: agreement to float rounding.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/arm/neon_vec.h"
#include "kernels/isa_kernels.h"
#include "kernels/ref/quant.h"

namespace slm::isa {
namespace {

// Elements [d, d + 8) of a Q8_0 head row (d a multiple of 8, head_dim of 32): quants of block
// d / 32 times its scale.
struct F32x8 {
  float32x4_t lo, hi;
};
F32x8 load_q8_0(const uint8_t* row, size_t d) {
  const auto* block = reinterpret_cast<const BlockQ8_0*>(row) + d / kQK8_0;
  const int16x8_t q = vmovl_s8(vld1_s8(block->qs + d % kQK8_0));
  const float s = fp16_to_fp32(block->d);
  return {vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), s),
          vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q)), s)};
}

void attention_q8_0(const float* q, const ref::KvRows& k, const ref::KvRows& v, size_t n_keys,
                    size_t D, float scale, float cap, float* scores, float* out) {
  for (size_t j = 0; j < n_keys; ++j) {
    const uint8_t* row = k.row(j);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    for (size_t d = 0; d < D; d += 8) {
      const F32x8 kd = load_q8_0(row, d);
      a0 = vfmaq_f32(a0, vld1q_f32(q + d), kd.lo);
      a1 = vfmaq_f32(a1, vld1q_f32(q + d + 4), kd.hi);
    }
    scores[j] = vaddvq_f32(vaddq_f32(a0, a1)) * scale;
  }
  if (cap > 0) softcap(scores, cap, n_keys);
  ref::softmax(scores, n_keys);
  for (size_t d = 0; d < D; d += 4) vst1q_f32(out + d, vdupq_n_f32(0.0f));
  for (size_t j = 0; j < n_keys; ++j) {
    const uint8_t* row = v.row(j);
    const float32x4_t p = vdupq_n_f32(scores[j]);
    for (size_t d = 0; d < D; d += 8) {
      const F32x8 vd = load_q8_0(row, d);
      vst1q_f32(out + d, vfmaq_f32(vld1q_f32(out + d), p, vd.lo));
      vst1q_f32(out + d + 4, vfmaq_f32(vld1q_f32(out + d + 4), p, vd.hi));
    }
  }
}

// Elements [d, d + 4) of an F32 or F16 head row as floats, and element d alone.
template <bool kF16>
float32x4_t load4(const uint8_t* row, size_t d) {
  if constexpr (kF16) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(row) + d)));
  } else {
    return vld1q_f32(reinterpret_cast<const float*>(row) + d);
  }
}
template <bool kF16>
float load1(const uint8_t* row, size_t d) {
  if constexpr (kF16) {
    return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[d]);
  } else {
    return reinterpret_cast<const float*>(row)[d];
  }
}

// p[i] = scale · q · k_i for kKeys rows at once (independent FMA chains, each q vector loaded
// once for all of them), the elements past the last 4 added in order.
template <bool kF16, size_t kKeys>
void key_scores(const float* q, const uint8_t* const* k, size_t D, float scale, float* p) {
  float32x4_t a[kKeys];
  for (float32x4_t& x : a) x = vdupq_n_f32(0.0f);
  size_t d = 0;
  for (; d + 4 <= D; d += 4) {
    const float32x4_t qd = vld1q_f32(q + d);
    for (size_t i = 0; i < kKeys; ++i) a[i] = vfmaq_f32(a[i], qd, load4<kF16>(k[i], d));
  }
  for (size_t i = 0; i < kKeys; ++i) {
    float sum = vaddvq_f32(a[i]);
    for (size_t e = d; e < D; ++e) sum += q[e] * load1<kF16>(k[i], e);
    p[i] = sum * scale;
  }
}

constexpr size_t kBlock = 64;  // keys per step of the online softmax

// Turns the block's scores p[0, n) into e^(p − m_new) in place, m_new the larger of m_run and
// their max, and updates m_run and l_run; returns the factor e^(m_old − m_new) that the sums so
// far take (0 before the first block).
float softmax_step(float* p, size_t n, float& m_run, float& l_run) {
  const float m_new = std::max(m_run, *std::max_element(p, p + n));
  const float corr = m_run == -INFINITY ? 0.0f : exp1(m_run - m_new);
  const float32x4_t m = vdupq_n_f32(m_new);
  float32x4_t sum = vdupq_n_f32(0.0f);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(p + j), m));
    vst1q_f32(p + j, e);
    sum = vaddq_f32(sum, e);
  }
  float total = vaddvq_f32(sum);
  for (; j < n; ++j) total += p[j] = exp1(p[j] - m_new);
  l_run = l_run * corr + total;
  m_run = m_new;
  return corr;
}

// out = corr · out + Σ_j p_j v_j over n rows: kVecs vectors of out (independent FMA chains) at a
// time over all the rows, then single vectors, then single elements.
template <bool kF16, size_t kVecs>
size_t add_value_vectors(float* out, float corr, const float* p, const uint8_t* const* rows,
                         size_t n, size_t d, size_t D) {
  for (; d + 4 * kVecs <= D; d += 4 * kVecs) {
    float32x4_t acc[kVecs];
    for (size_t c = 0; c < kVecs; ++c) acc[c] = vmulq_n_f32(vld1q_f32(out + d + 4 * c), corr);
    for (size_t j = 0; j < n; ++j) {
      for (size_t c = 0; c < kVecs; ++c) {
        acc[c] = vfmaq_n_f32(acc[c], load4<kF16>(rows[j], d + 4 * c), p[j]);
      }
    }
    for (size_t c = 0; c < kVecs; ++c) vst1q_f32(out + d + 4 * c, acc[c]);
  }
  return d;
}
template <bool kF16>
void add_values(float* out, float corr, const float* p, const uint8_t* const* rows, size_t n,
                size_t D) {
  size_t d = add_value_vectors<kF16, 4>(out, corr, p, rows, n, 0, D);
  d = add_value_vectors<kF16, 1>(out, corr, p, rows, n, d, D);
  for (; d < D; ++d) {
    float acc = out[d] * corr;
    for (size_t j = 0; j < n; ++j) acc += p[j] * load1<kF16>(rows[j], d);
    out[d] = acc;
  }
}

// One block of nb ≤ kBlock rows (krow, vrow; kF16: F16 rows, else F32) in the online softmax:
// the scores into p, soft-capped first if cap > 0 (attention_softcapped), the softmax step, the
// values added into out.
template <bool kF16>
void attention_block(const float* q, const uint8_t* const* krow, const uint8_t* const* vrow,
                     size_t nb, size_t D, float scale, float cap, float* p, float& m_run,
                     float& l_run, float* out) {
  size_t j = 0;
  for (; j + 4 <= nb; j += 4) key_scores<kF16, 4>(q, krow + j, D, scale, p + j);
  for (; j < nb; ++j) key_scores<kF16, 1>(q, krow + j, D, scale, p + j);
  if (cap > 0) softcap(p, cap, nb);
  const float corr = softmax_step(p, nb, m_run, l_run);
  add_values<kF16>(out, corr, p, vrow, nb, D);
}

// out[0, D) *= 1 / l: the softmax's normalisation, once at the end.
void divide(float* out, size_t D, float l) {
  const float inv = 1.0f / l;
  for (size_t d = 0; d < D; ++d) out[d] *= inv;
}

template <bool kF16>
void attention_online(const float* q, const ref::KvRows& k, const ref::KvRows& v, size_t n_keys,
                      size_t D, float scale, float cap, float* out) {
  const uint8_t* krow[kBlock];
  const uint8_t* vrow[kBlock];
  float p[kBlock];
  float m_run = -INFINITY, l_run = 0;
  std::fill_n(out, D, 0.0f);
  for (size_t j0 = 0; j0 < n_keys; j0 += kBlock) {
    const size_t nb = std::min(kBlock, n_keys - j0);
    k.rows(j0, nb, krow);
    v.rows(j0, nb, vrow);
    attention_block<kF16>(q, krow, vrow, nb, D, scale, cap, p, m_run, l_run, out);
  }
  divide(out, D, l_run);
}

void attention(const float* q, const ref::KvRows& k, const ref::KvRows& v, bool kv_is_f16,
               size_t n_keys, size_t head_dim, float scale, float* /*scores*/, float* out) {
  if (kv_is_f16)
    attention_online<true>(q, k, v, n_keys, head_dim, scale, 0, out);
  else
    attention_online<false>(q, k, v, n_keys, head_dim, scale, 0, out);
}

void attention_softcapped(const float* q, const ref::KvRows& k, const ref::KvRows& v,
                          bool kv_is_f16, size_t n_keys, size_t head_dim, float scale, float cap,
                          float* /*scores*/, float* out) {
  if (kv_is_f16)
    attention_online<true>(q, k, v, n_keys, head_dim, scale, cap, out);
  else
    attention_online<false>(q, k, v, n_keys, head_dim, scale, cap, out);
}

// Several query rows over the same cache rows (OpsSet::attention_causal and attention_heads): row
// r is head r % n_heads of token r / n_heads and sees the first n_keys0 + r / n_heads rows. The
// rows go through the cache block by block, each block in turn for all of them, every row taking
// attention_online's steps over it (so it gets what attention() or attention_softcapped() gives
// it, bit for bit). Where the heads are at most kMaxSharedD wide, each block of F16 keys and
// values is first widened to F32 once for all the rows (exactly: the same values).
constexpr size_t kMaxSharedD = 128;
constexpr size_t kMaxSharedRows = 256;  // tokens × heads per pass (more go in several)

template <bool kF16>
void attention_shared(const float* q, size_t q_stride, size_t n_heads, size_t n_tokens,
                      size_t n_keys0, const ref::KvRows& k, const ref::KvRows& v, size_t D,
                      float scale, float cap, float* out, size_t out_stride) {
  const auto row_q = [&](size_t t, size_t h) { return q + t * q_stride + h * D; };
  const auto row_out = [&](size_t t, size_t h) { return out + t * out_stride + h * D; };
  if (n_tokens * n_heads > kMaxSharedRows && n_heads <= kMaxSharedRows) {
    const size_t chunk = kMaxSharedRows / n_heads;  // tokens at a time
    for (size_t t = 0; t < n_tokens; t += chunk) {
      attention_shared<kF16>(row_q(t, 0), q_stride, n_heads, std::min(chunk, n_tokens - t),
                             n_keys0 + t, k, v, D, scale, cap, row_out(t, 0), out_stride);
    }
    return;
  }
  if (n_heads > kMaxSharedRows) {
    for (size_t t = 0; t < n_tokens; ++t) {
      for (size_t h = 0; h < n_heads; ++h) {
        attention_online<kF16>(row_q(t, h), k, v, n_keys0 + t, D, scale, cap, row_out(t, h));
      }
    }
    return;
  }
  const bool widen = kF16 && D <= kMaxSharedD;
  float kf[kF16 ? kBlock * kMaxSharedD : 1], vf[kF16 ? kBlock * kMaxSharedD : 1];
  const uint8_t* krow[kBlock];
  const uint8_t* vrow[kBlock];
  float p[kBlock];
  float m_run[kMaxSharedRows], l_run[kMaxSharedRows];
  for (size_t r = 0; r < n_tokens * n_heads; ++r) {
    m_run[r] = -INFINITY, l_run[r] = 0;
    std::fill_n(row_out(r / n_heads, r % n_heads), D, 0.0f);
  }
  const size_t n_keys = n_keys0 + n_tokens - 1;  // the last token's
  for (size_t j0 = 0; j0 < n_keys; j0 += kBlock) {
    const size_t nb_all = std::min(kBlock, n_keys - j0);
    k.rows(j0, nb_all, krow);
    v.rows(j0, nb_all, vrow);
    if (widen) {  // in place of the rows: krow and vrow point at F32 from here
      for (size_t j = 0; j < nb_all; ++j) {
        for (auto [rows, f] : {std::pair{krow, kf}, std::pair{vrow, vf}}) {
          float* row = f + j * D;
          size_t d = 0;
          for (; d + 4 <= D; d += 4) vst1q_f32(row + d, load4<true>(rows[j], d));
          for (; d < D; ++d) row[d] = load1<true>(rows[j], d);
          rows[j] = reinterpret_cast<const uint8_t*>(row);
        }
      }
    }
    // The tokens that see key j0 onwards (n_keys0 + t > j0).
    for (size_t t = j0 < n_keys0 ? 0 : j0 - n_keys0 + 1; t < n_tokens; ++t) {
      const size_t nb = std::min(kBlock, n_keys0 + t - j0);
      for (size_t h = 0; h < n_heads; ++h) {
        const size_t r = t * n_heads + h;
        const auto block = widen ? attention_block<false> : attention_block<kF16>;
        block(row_q(t, h), krow, vrow, nb, D, scale, cap, p, m_run[r], l_run[r], row_out(t, h));
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
  if (kv_is_f16) {
    attention_shared<true>(q, q_stride, n_heads, n_tokens, n_keys0, k, v, head_dim, scale, cap, out,
                           out_stride);
  } else {
    attention_shared<false>(q, q_stride, n_heads, n_tokens, n_keys0, k, v, head_dim, scale, cap,
                            out, out_stride);
  }
}

// One token's heads: the same rows, all seeing n_keys.
void attention_heads(const float* q, size_t n_heads, const ref::KvRows& k, const ref::KvRows& v,
                     bool kv_is_f16, size_t n_keys, size_t head_dim, float scale, float* out) {
  attention_causal(q, 0, n_heads, 1, n_keys, k, v, kv_is_f16, head_dim, scale, 0, out, 0);
}

}  // namespace

void add_neon_attention(OpsSet& ops) {
  ops.attention = attention;
  ops.attention_heads = attention_heads;
  ops.attention_causal = attention_causal;
  ops.attention_softcapped = attention_softcapped;
  ops.attention_q8_0 = attention_q8_0;
}

}  // namespace slm::isa
