// Block loaders and the blocked dot loop shared by kernels/arm/neon.cpp (baseline ASIMD) and
// kernels/arm/neon_dotprod.cpp (+dotprod). Everything is in an unnamed namespace on purpose: each
// translation unit gets its own copy compiled with its own flags, so the linker can never pick a
// dotprod-compiled copy for a baseline caller (as it could with ordinary inline functions).
//
// Quantized dots follow the contract in kernels/dispatch.h: per block an exact int32 sum of int8
// products, then the block term float(sumi) * (d_w * d_x) (+ m_w * s_x for the Q*_1 types) formed
// with the same float operations as the reference, four blocks per vector, added into two vector
// accumulators (eight running sums instead of the reference's one).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"

namespace slm::isa {
namespace {

// The 32 quants of one block as int8, elements 0-15 in lo and 16-31 in hi.
struct I8x32 {
  int8x16_t lo;
  int8x16_t hi;
};

I8x32 load_q8_0(const BlockQ8_0& b) { return {vld1q_s8(b.qs), vld1q_s8(b.qs + 16)}; }
I8x32 load_q8_1(const BlockQ8_1& b) { return {vld1q_s8(b.qs), vld1q_s8(b.qs + 16)}; }

// Low nibbles are elements 0-15, high nibbles 16-31 (Q4_0 and Q4_1 alike).
I8x32 nibbles(const uint8_t* qs) {
  const uint8x16_t q = vld1q_u8(qs);
  return {vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))),
          vreinterpretq_s8_u8(vshrq_n_u8(q, 4))};
}

// 0x10 in the lanes whose bit is set in qh: bit j of the little-endian u32 is element j's 5th bit.
I8x32 fifth_bits(const uint8_t* qh) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  const uint8x16_t ten = vdupq_n_u8(0x10);
  const uint8x16_t b01 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
  const uint8x16_t b23 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
  return {vreinterpretq_s8_u8(vandq_u8(vtstq_u8(b01, bit), ten)),
          vreinterpretq_s8_u8(vandq_u8(vtstq_u8(b23, bit), ten))};
}

// Weight quants as int8: Q4_0 q - 8 in [-8, 7]; Q4_1 q in [0, 15]; Q5_0 q - 16 in [-16, 15];
// Q5_1 q in [0, 31].
I8x32 load_q4_0(const BlockQ4_0& b) {
  const I8x32 q = nibbles(b.qs);
  return {vsubq_s8(q.lo, vdupq_n_s8(8)), vsubq_s8(q.hi, vdupq_n_s8(8))};
}
I8x32 load_q4_1(const BlockQ4_1& b) { return nibbles(b.qs); }
I8x32 load_q5_0(const BlockQ5_0& b) {
  const I8x32 q = nibbles(b.qs);
  const I8x32 h = fifth_bits(b.qh);
  return {vsubq_s8(vorrq_s8(q.lo, h.lo), vdupq_n_s8(16)),
          vsubq_s8(vorrq_s8(q.hi, h.hi), vdupq_n_s8(16))};
}
I8x32 load_q5_1(const BlockQ5_1& b) {
  const I8x32 q = nibbles(b.qs);
  const I8x32 h = fifth_bits(b.qh);
  return {vorrq_s8(q.lo, h.lo), vorrq_s8(q.hi, h.hi)};
}

// The fp16 fields at `first`, first + stride, ... of 4 consecutive blocks, as floats (exact).
float32x4_t halves4(const uint8_t* first, size_t stride) {
  uint16_t h[4];
  for (size_t j = 0; j < 4; ++j) std::memcpy(&h[j], first + j * stride, sizeof(uint16_t));
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

template <typename Block>
float32x4_t field4(const Block* b, size_t offset) {
  return halves4(reinterpret_cast<const uint8_t*>(b) + offset, sizeof(Block));
}

// Weight block W against activation block X. kMinOffset: 0 for the symmetric types; else the
// byte offset of W's fp16 min m (X's fp16 s sits at the same offset 2 in BlockQ8_1).
template <typename W, typename X, I8x32 (*LoadW)(const W&), I8x32 (*LoadX)(const X&),
          size_t kMinOffset>
struct BlockPair {
  using WBlock = W;
  using XBlock = X;
  static I8x32 load_w(const W& w) { return LoadW(w); }
  static I8x32 load_x(const X& x) { return LoadX(x); }
  static constexpr bool kHasMin = kMinOffset != 0;
  static constexpr size_t kMin = kMinOffset;
};

using PairQ8_0 = BlockPair<BlockQ8_0, BlockQ8_0, load_q8_0, load_q8_0, 0>;
using PairQ4_0 = BlockPair<BlockQ4_0, BlockQ8_0, load_q4_0, load_q8_0, 0>;
using PairQ5_0 = BlockPair<BlockQ5_0, BlockQ8_0, load_q5_0, load_q8_0, 0>;
using PairQ4_1 = BlockPair<BlockQ4_1, BlockQ8_1, load_q4_1, load_q8_1, offsetof(BlockQ4_1, m)>;
using PairQ5_1 = BlockPair<BlockQ5_1, BlockQ8_1, load_q5_1, load_q8_1, offsetof(BlockQ5_1, m)>;

// The term of 4 consecutive blocks, lane j for block j: s[j]'s lanes summed (pairwise adds, exact)
// times the blocks' d_w · d_x.
inline float32x4_t four_block_terms(const int32x4_t* s, float32x4_t d_w, float32x4_t d_x) {
  const int32x4_t sumi = vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
  return vmulq_f32(vcvtq_f32_s32(sumi), vmulq_f32(d_w, d_x));
}

// One block's term alone (the blocks after the last full group of 8), as the reference forms it.
template <typename Pair, int32x4_t (*Dot)(I8x32, I8x32)>
float block_term(const typename Pair::WBlock& w, const typename Pair::XBlock& x) {
  const int32_t sumi = vaddvq_s32(Dot(Pair::load_w(w), Pair::load_x(x)));
  float term = static_cast<float>(sumi) * (fp16_to_fp32(w.d) * fp16_to_fp32(x.d));
  if constexpr (Pair::kHasMin) term = term + fp16_to_fp32(w.m) * fp16_to_fp32(x.s);
  return term;
}

// sum_b term_b over n / 32 blocks. Dot(w, x) returns 4 int32 lanes whose sum is the block's exact
// integer dot product.
template <typename Pair, int32x4_t (*Dot)(I8x32, I8x32)>
float dot_blocks(const void* w_row, const void* x_row, size_t n) {
  using W = typename Pair::WBlock;
  using X = typename Pair::XBlock;
  const auto* w = static_cast<const W*>(w_row);
  const auto* x = static_cast<const X*>(x_row);
  const size_t nb = n / 32;
  float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  size_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    for (size_t g = 0; g < 2; ++g) {
      const W* wg = w + i + 4 * g;
      const X* xg = x + i + 4 * g;
      int32x4_t s[4];
      for (size_t j = 0; j < 4; ++j) s[j] = Dot(Pair::load_w(wg[j]), Pair::load_x(xg[j]));
      float32x4_t term = four_block_terms(s, field4(wg, 0), field4(xg, 0));
      if constexpr (Pair::kHasMin) {
        term =
            vaddq_f32(term, vmulq_f32(field4(wg, Pair::kMin), field4(xg, offsetof(BlockQ8_1, s))));
      }
      acc[g] = vaddq_f32(acc[g], term);
    }
  }
  float tail = 0.0f;
  for (; i < nb; ++i) tail += block_term<Pair, Dot>(w[i], x[i]);
  return vaddvq_f32(vaddq_f32(acc[0], acc[1])) + tail;
}

// Prefill tile (KernelSet::gemm_tile) for the weight types dotted with Q8_0 (Q8_0, Q4_0, Q5_0):
// Y[t][r] for the 8 rows of w and n_tokens packed activation rows, each bit-identical to
// dot_blocks<Pair, Dot> for that row and token: the same block sums, terms formed by the same
// float operations, added into the same two 4-lane accumulators over full groups of 8 blocks,
// plus the same sequential sum of the blocks after them. Group by group, each row's 8 weight
// blocks are loaded (and unpacked) once for all the tokens, whose groups of activations (8 · 36
// bytes each) stay in L1 for the 8 rows.
template <typename Pair, int32x4_t (*Dot)(I8x32, I8x32)>
void tile_q8_0(const void* w, size_t w_stride, const void* x_packed, size_t x_stride,
               size_t n_tokens, size_t n, float* y, size_t y_stride) {
  static_assert(!Pair::kHasMin, "Q8_0 activations: no min term");
  using W = typename Pair::WBlock;
  const auto row = [&](size_t r) {
    return reinterpret_cast<const W*>(static_cast<const uint8_t*>(w) + r * w_stride);
  };
  const auto* xp = static_cast<const uint8_t*>(x_packed);
  const size_t nb = n / kQK8_0, groups = nb / kPackGroup;
  float32x4_t acc[kTileRows][kMaxTileTokens][2];
  for (size_t r = 0; r < kTileRows; ++r) {
    for (size_t t = 0; t < n_tokens; ++t) acc[r][t][0] = acc[r][t][1] = vdupq_n_f32(0.0f);
  }
  for (size_t g = 0; g < groups; ++g) {
    for (size_t r = 0; r < kTileRows; ++r) {
      const W* wg = row(r) + g * kPackGroup;
      I8x32 wq[kPackGroup];
      for (size_t j = 0; j < kPackGroup; ++j) wq[j] = Pair::load_w(wg[j]);
      const float32x4_t dw[2] = {field4(wg, 0), field4(wg + 4, 0)};
      for (size_t t = 0; t < n_tokens; ++t) {
        const uint8_t* group = xp + t * x_stride + g * kPackedGroupBytes;
        for (size_t h = 0; h < 2; ++h) {
          int32x4_t s[4];
          for (size_t j = 0; j < 4; ++j) {
            const int8_t* q = reinterpret_cast<const int8_t*>(group + (4 * h + j) * kQK8_0);
            s[j] = Dot(wq[4 * h + j], {vld1q_s8(q), vld1q_s8(q + 16)});
          }
          const float32x4_t dx =
              vld1q_f32(reinterpret_cast<const float*>(group + kPackedScalesAt) + 4 * h);
          acc[r][t][h] = vaddq_f32(acc[r][t][h], four_block_terms(s, dw[h], dx));
        }
      }
    }
  }
  for (size_t r = 0; r < kTileRows; ++r) {
    const W* wr = row(r);
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto* tail =
          reinterpret_cast<const BlockQ8_0*>(xp + t * x_stride + groups * kPackedGroupBytes);
      float sum = 0.0f;
      for (size_t i = groups * kPackGroup; i < nb; ++i) {
        sum += block_term<Pair, Dot>(wr[i], tail[i - groups * kPackGroup]);
      }
      y[t * y_stride + r] = vaddvq_f32(vaddq_f32(acc[r][t][0], acc[r][t][1])) + sum;
    }
  }
}

}  // namespace
}  // namespace slm::isa
