// NEON dots of the K-quants (Q2_K..Q6_K) with Q8_K activations, shared by kernels/arm/neon.cpp
// (vmull_s8) and kernels/arm/neon_dotprod.cpp (sdot), each translation unit with its own copy
// (unnamed namespace, as in neon_blocks.h).
//
// Each super-block is decoded into its 16 groups of 16 signed quants (Q3_K's -4 and Q6_K's -32
// applied) or unsigned ones (Q2_K, Q4_K, Q5_K, whose mins go through Q8_K's bsums), with one
// scale and one min per group of 16. Its integer sums are exact, its term is formed with the
// reference's float operations (kernels/ref/quant_k.cpp), and the terms are added one by one in
// the reference's order: the result equals the reference's bit for bit.
// Bounds: |isum| <= 16 groups * 128 (|scale|) * 16 * 63 * 128 < 2^31; msum <= 16 * 63 * 2048.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"

namespace slm::isa {
namespace {

// One super-block: group g (elements 16g..16g+15) has quants q[g], scale[g] and min[g] (zero for
// the types without mins).
struct KGroups {
  int8x16_t q[16];
  int16_t scale[16];
  int16_t min[16];
};

// Bits 2k..2k+1 of each byte.
inline uint8x16_t two_bits(uint8x16_t v, int k) {
  return vandq_u8(vshlq_u8(v, vdupq_n_s8(static_cast<int8_t>(-2 * k))), vdupq_n_u8(3));
}
// Bit b of each byte, as 0 or 1.
inline uint8x16_t bit(uint8x16_t v, int b) {
  return vandq_u8(vshlq_u8(v, vdupq_n_s8(static_cast<int8_t>(-b))), vdupq_n_u8(1));
}

// Q2_K: element 128h + 32k + l is bits 2k..2k+1 of qs[32h + l]; group g's scale and min are the
// low and high nibbles of scales[g].
inline void decode(const BlockQ2_K& b, KGroups& out) {
  for (int h = 0; h < 2; ++h) {
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qs = vld1q_u8(b.qs + 32 * h + 16 * half);
      for (int k = 0; k < 4; ++k) {
        out.q[8 * h + 2 * k + half] = vreinterpretq_s8_u8(two_bits(qs, k));
      }
    }
  }
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = static_cast<int16_t>(b.scales[g] & 0xF);
    out.min[g] = static_cast<int16_t>(b.scales[g] >> 4);
  }
}

// Q3_K: Q2_K's low bits, minus 4 unless bit 4h + k of hmask[l] is set; signed 6-bit scales.
inline void decode(const BlockQ3_K& b, KGroups& out) {
  for (int h = 0; h < 2; ++h) {
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qs = vld1q_u8(b.qs + 32 * h + 16 * half);
      const uint8x16_t hm = vld1q_u8(b.hmask + 16 * half);
      for (int k = 0; k < 4; ++k) {
        const uint8x16_t q = vorrq_u8(two_bits(qs, k), vshlq_n_u8(bit(hm, 4 * h + k), 2));
        out.q[8 * h + 2 * k + half] = vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(4));
      }
    }
  }
  int8_t sc[16];
  q3k_unpack_scales(b.scales, sc);
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = sc[g];
    out.min[g] = 0;
  }
}

// Q4_K / Q5_K: qs[32h + l] low nibble is element 64h + l, high nibble 64h + 32 + l; Q5_K's bit
// 2h / 2h + 1 of qh[l] on top. The 8 groups of 32 give each of their two groups of 16 their scale
// and min.
template <typename B>
void decode_q45_k(const B& b, KGroups& out) {
  constexpr bool kFiveBits = requires(B v) { v.qh; };
  for (int h = 0; h < 4; ++h) {
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qs = vld1q_u8(b.qs + 32 * h + 16 * half);
      uint8x16_t lo = vandq_u8(qs, vdupq_n_u8(0x0F));
      uint8x16_t hi = vshrq_n_u8(qs, 4);
      if constexpr (kFiveBits) {
        const uint8x16_t qh = vld1q_u8(b.qh + 16 * half);
        lo = vorrq_u8(lo, vshlq_n_u8(bit(qh, 2 * h), 4));
        hi = vorrq_u8(hi, vshlq_n_u8(bit(qh, 2 * h + 1), 4));
      }
      out.q[4 * h + half] = vreinterpretq_s8_u8(lo);
      out.q[4 * h + 2 + half] = vreinterpretq_s8_u8(hi);
    }
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t sc = 0, mn = 0;
    k4_scale_min(j, b.scales, &sc, &mn);
    out.scale[2 * j] = out.scale[2 * j + 1] = sc;
    out.min[2 * j] = out.min[2 * j + 1] = mn;
  }
}
inline void decode(const BlockQ4_K& b, KGroups& out) { decode_q45_k(b, out); }
inline void decode(const BlockQ5_K& b, KGroups& out) { decode_q45_k(b, out); }

// Q6_K: element 128h + 32k + l: nibble k >> 1 of ql[64h + 32(k & 1) + l], bits 2k..2k+1 of
// qh[32h + l] on top, minus 32; int8 scales.
inline void decode(const BlockQ6_K& b, KGroups& out) {
  for (int h = 0; h < 2; ++h) {
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qh = vld1q_u8(b.qh + 32 * h + 16 * half);
      for (int k = 0; k < 4; ++k) {
        const uint8x16_t ql = vld1q_u8(b.ql + 64 * h + 32 * (k & 1) + 16 * half);
        const uint8x16_t low = k < 2 ? vandq_u8(ql, vdupq_n_u8(0x0F)) : vshrq_n_u8(ql, 4);
        const uint8x16_t q = vorrq_u8(low, vshlq_n_u8(two_bits(qh, k), 4));
        out.q[8 * h + 2 * k + half] = vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32));
      }
    }
  }
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = b.scales[g];
    out.min[g] = 0;
  }
}

// A super-block's term d · isum (− dmin · msum) with activation block x, given w decoded into k.
// Dot16(w, x) returns 4 int32 lanes summing to the exact dot of 16 int8 pairs.
template <typename B, int32x4_t (*Dot16)(int8x16_t, int8x16_t)>
[[gnu::always_inline]] inline float kquant_term(const B& w, const KGroups& k, const BlockQ8_K& x) {
  int32x4_t acc = vdupq_n_s32(0);
  for (size_t g = 0; g < 16; ++g) {
    acc = vaddq_s32(acc, vmulq_n_s32(Dot16(k.q[g], vld1q_s8(x.qs + 16 * g)), k.scale[g]));
  }
  const auto isum = static_cast<float>(vaddvq_s32(acc));
  const float d = fp16_to_fp32(w.d) * x.d;
  if constexpr (requires { w.dmin; }) {
    const int16x8_t m0 = vld1q_s16(k.min), m1 = vld1q_s16(k.min + 8);
    const int16x8_t b0 = vld1q_s16(x.bsums), b1 = vld1q_s16(x.bsums + 8);
    int32x4_t m = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    m = vmlal_high_s16(m, m0, b0);
    m = vmlal_s16(m, vget_low_s16(m1), vget_low_s16(b1));
    m = vmlal_high_s16(m, m1, b1);
    const float dmin = fp16_to_fp32(w.dmin) * x.d;
    return d * isum - dmin * static_cast<float>(vaddvq_s32(m));
  } else {
    return d * isum;
  }
}

// sum_b term_b, the terms added in order.
template <typename B, int32x4_t (*Dot16)(int8x16_t, int8x16_t)>
float dot_kquant(const void* w_row, const void* x_row, size_t n) {
  const auto* w = static_cast<const B*>(w_row);
  const auto* x = static_cast<const BlockQ8_K*>(x_row);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    KGroups k;
    decode(w[i], k);
    sum += kquant_term<B, Dot16>(w[i], k, x[i]);
  }
  return sum;
}

// Prefill tile (KernelSet::gemm_tile): Y[t][r] for the 8 rows of w and n_tokens Q8_K rows, each
// dot_kquant's sum for that row and token, bit for bit (the same terms, added in the same order).
// Each super-block of each row is decoded once for all the tokens, whose blocks (292 bytes each)
// stay in L1 for the 8 rows.
template <typename B, int32x4_t (*Dot16)(int8x16_t, int8x16_t)>
void tile_kquant(const void* w, size_t w_stride, const void* x_rows, size_t x_stride,
                 size_t n_tokens, size_t n, float* y, size_t y_stride) {
  const auto* x = static_cast<const uint8_t*>(x_rows);
  float sum[kTileRows][kMaxTileTokens] = {};
  for (size_t i = 0; i < n / kQK_K; ++i) {
    for (size_t r = 0; r < kTileRows; ++r) {
      const B& wb = reinterpret_cast<const B*>(static_cast<const uint8_t*>(w) + r * w_stride)[i];
      KGroups k;
      decode(wb, k);
      for (size_t t = 0; t < n_tokens; ++t) {
        const auto& xb = reinterpret_cast<const BlockQ8_K*>(x + t * x_stride)[i];
        sum[r][t] += kquant_term<B, Dot16>(wb, k, xb);
      }
    }
  }
  for (size_t r = 0; r < kTileRows; ++r) {
    for (size_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = sum[r][t];
  }
}

// The dots and tiles with Dot16.
template <int32x4_t (*Dot16)(int8x16_t, int8x16_t)>
void add_neon_kquant_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kQ2_K)] = dot_kquant<BlockQ2_K, Dot16>;
  k.vec_dot[static_cast<size_t>(DType::kQ3_K)] = dot_kquant<BlockQ3_K, Dot16>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_K)] = dot_kquant<BlockQ4_K, Dot16>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_K)] = dot_kquant<BlockQ5_K, Dot16>;
  k.vec_dot[static_cast<size_t>(DType::kQ6_K)] = dot_kquant<BlockQ6_K, Dot16>;
  k.gemm_tile[static_cast<size_t>(DType::kQ2_K)] = tile_kquant<BlockQ2_K, Dot16>;
  k.gemm_tile[static_cast<size_t>(DType::kQ3_K)] = tile_kquant<BlockQ3_K, Dot16>;
  k.gemm_tile[static_cast<size_t>(DType::kQ4_K)] = tile_kquant<BlockQ4_K, Dot16>;
  k.gemm_tile[static_cast<size_t>(DType::kQ5_K)] = tile_kquant<BlockQ5_K, Dot16>;
  k.gemm_tile[static_cast<size_t>(DType::kQ6_K)] = tile_kquant<BlockQ6_K, Dot16>;
}

}  // namespace
}  // namespace slm::isa
