// AVX2 dots of the K-quants (Q2_K..Q6_K) with Q8_K activations, and of the legacy blocks that
// avx2.cpp does not cover (Q5_0 x Q8_0, Q4_1 and Q5_1 x Q8_1, at the end). Compiled with the AVX2
// flags and registered by add_avx2_kernels (so the AVX-512 set has them too).
//
// K-quants. Contract (kernels/dispatch.h): each super-block's integer sums are exact and its float
// term is formed with the reference's float operations (kernels/ref/quant_k.cpp), so every term is
// bit-identical; only the order of adding the terms differs. Reducing each super-block's int32
// lanes and forming its term one at a time took about as long as the integer work itself, so
// 8 super-blocks are reduced together (a transposing reduction) and their 8 terms formed in float
// lanes (no FMA: these files are built with -ffp-contract=off) and added into 8 accumulators.
//
// Integer work per 32 weights: the quants are unpacked to unsigned bytes (0..63) and multiplied by
// the signed Q8_K bytes with vpmaddubsw (int16 pair sums, no saturation for q <= 127), then
// vpmaddwd by the group's integer scale broadcast as int16 gives int32 lanes. Offsets that make a
// quant signed (Q3_K's -4, Q6_K's -32) are taken out once per super-block through Q8_K's bsums,
// the sums of each 16 activations: sum_g s_g sum (q - o) x = sum_g s_g sum q x - o sum_g s_g bsum_g
// (exact, since a Q8_K block's bsums are the sums of its quants). Bounds: |isum| <= 16 groups *
// 128 (|scale|) * 16 * 63 * 128 < 2^31.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/avx2_kquant_common.h"

namespace slm::isa {
namespace {

// sum_g sc_g * sum_{l<16} q_{16g+l} x_{16g+l} over a super-block of 16-element groups, as 8
// int32 lanes; `quants(h, k)` gives the unsigned quants of elements 128h + 32k .. + 31.
template <typename Quants>
[[gnu::always_inline]] inline __m256i group16_dot(const Quants& quants, __m256i sc16,
                                                  const int8_t* x) {
  __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      const __m256i p = _mm256_maddubs_epi16(quants(h, k), load_256(x + 128 * h + 32 * k));
      acc[k & 1] = _mm256_add_epi32(acc[k & 1], _mm256_madd_epi16(p, group16_scales(sc16, h, k)));
    }
  }
  return _mm256_add_epi32(acc[0], acc[1]);
}

// sum_g s_g * bsum_g over the 16 groups, as 8 int32 lanes.
__m256i scaled_bsums(__m256i sc16, const BlockQ8_K& x) {
  return _mm256_madd_epi16(load_256(x.bsums), sc16);
}

// The integer sums of one super-block as int32 lanes (their lane sums are isum and msum). The
// functions that make them are always inlined: called, they return through memory.
struct Lanes {
  __m256i isum, msum;
};

// The terms of `count` (1..8) consecutive super-blocks, lane j for block j (zero in lanes past
// count): (d_w d_x) * isum [- (dmin_w d_x) * msum], the reference's float operations for every
// K-quant (its Q2_K writes d_x d_w: the same product). Always inlined so that the full batch
// (count 8) unrolls.
template <typename W, Lanes (*Sums)(const W&, const BlockQ8_K&), bool kHasMin>
[[gnu::always_inline]] inline __m256 superblock_terms(const W* w, const BlockQ8_K* x,
                                                      size_t count) {
  __m256i isums[8], msums[8];
  for (size_t j = 0; j < 8; ++j) {
    if (j < count) {
      // Decode streams the rows from DRAM, one after another: asking for them this far ahead
      // keeps the memory busy (BM_Matmul q4_K_t1 at 32000 x 2048: 7.7 -> 10.8 GB/s, Q6_K
      // 7.8 -> 10.6, at 2 KB; 4 KB did better or as well for every type).
      prefetch_ahead<sizeof(W)>(reinterpret_cast<const uint8_t*>(&w[j]));
      const Lanes l = Sums(w[j], x[j]);
      isums[j] = l.isum;
      msums[j] = l.msum;
    } else {
      isums[j] = msums[j] = _mm256_setzero_si256();
    }
  }
  // The scales of the blocks, lane j for block j: gathered by lane inserts for a full batch (as
  // scalar stores read back as one vector they would miss store-to-load forwarding and stall),
  // through zero-padded arrays for the last, partial one.
  const auto w_fp16 = [&](size_t offset) {
    if (count == 8) return fp16_fields8(reinterpret_cast<const uint8_t*>(w) + offset, sizeof(W));
    alignas(16) uint16_t h[8] = {};
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(&h[j], reinterpret_cast<const uint8_t*>(&w[j]) + offset, sizeof(uint16_t));
    }
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
  };
  __m256 vxd;
  if (count == 8) {
    vxd = _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d);
  } else {
    alignas(32) float xd[8] = {};
    for (size_t j = 0; j < count; ++j) xd[j] = x[j].d;
    vxd = _mm256_load_ps(xd);
  }
  const __m256 dd = _mm256_mul_ps(w_fp16(offsetof(W, d)), vxd);
  __m256 term = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(reduce8(isums)));
  if constexpr (kHasMin) {
    const __m256 ddmin = _mm256_mul_ps(w_fp16(offsetof(W, dmin)), vxd);
    term = _mm256_sub_ps(term, _mm256_mul_ps(ddmin, _mm256_cvtepi32_ps(reduce8(msums))));
  }
  return term;
}

// sum_b of the super-block terms, 8 blocks per batch in 8 lane accumulators.
template <typename W, Lanes (*Sums)(const W&, const BlockQ8_K&), bool kHasMin>
float dot_superblocks(const void* w_row, const void* x_row, size_t n) {
  const auto* w = static_cast<const W*>(w_row);
  const auto* x = static_cast<const BlockQ8_K*>(x_row);
  const size_t nb = n / kQK_K;
  __m256 acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    acc = _mm256_add_ps(acc, superblock_terms<W, Sums, kHasMin>(w + i, x + i, 8));
  }
  if (i < nb) acc = _mm256_add_ps(acc, superblock_terms<W, Sums, kHasMin>(w + i, x + i, nb - i));
  return hsum_ps(acc);
}

// ---- Q2_K ----

// isum = sum_g (sc_g & 15) sum q x, msum = sum_g (sc_g >> 4) bsum_g.
[[gnu::always_inline]] inline Lanes sums_q2_k(const BlockQ2_K& w, const BlockQ8_K& x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
  const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
  const __m256i qs[2] = {load_256(w.qs), load_256(w.qs + 32)};
  const auto quants = [&](int h, int k) { return two_bits(qs[h], k); };
  return {group16_dot(quants, sc16, x.qs), scaled_bsums(mn16, x)};
}

// ---- Q3_K ----

// isum = sum_g s_g sum q x with q = (low 2 bits + 4 * high bit) - 4.
[[gnu::always_inline]] inline Lanes sums_q3_k(const BlockQ3_K& w, const BlockQ8_K& x) {
  const __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales(w.scales));
  const __m256i qs[2] = {load_256(w.qs), load_256(w.qs + 32)};
  const __m256i hmask = load_256(w.hmask);
  const auto quants = [&](int h, int k) { return q3k_quants(qs[h], hmask, h, k); };
  return {_mm256_sub_epi32(group16_dot(quants, sc16, x.qs),
                           _mm256_slli_epi32(scaled_bsums(sc16, x), 2)),
          _mm256_setzero_si256()};
}

// ---- Q4_K, Q5_K ----

// Dword k (0..3, a constant) of each 128-bit half, in all four dwords of that half.
[[gnu::always_inline]] inline __m256i dword_broadcast(__m256i v, int k) {
  switch (k) {
    case 0:
      return _mm256_shuffle_epi32(v, 0x00);
    case 1:
      return _mm256_shuffle_epi32(v, 0x55);
    case 2:
      return _mm256_shuffle_epi32(v, 0xAA);
    default:
      return _mm256_shuffle_epi32(v, 0xFF);
  }
}

// Groups of 32: isum = sum_g sc_g sum q x, msum = sum_g m_g (bsum_2g + bsum_2g+1). Q5_K adds the
// fifth bits (bit 2h / 2h + 1 of qh[l] for elements 64h + l / 64h + 32 + l).
template <typename W>
[[gnu::always_inline]] inline Lanes sums_q45_k(const W& w, const BlockQ8_K& x) {
  const __m128i sm = k4_scales_mins(w.scales);
  const __m128i sc16 = _mm_cvtepu8_epi16(sm);
  const __m128i mn16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
  // Each group's scale as an int16 pair; groups 0-3 / 4-7 in both halves of a register, so that
  // vpshufd with an immediate broadcasts one (no shuffle-control constants to keep in registers).
  const __m256i scale_pairs[2] = {_mm256_broadcastsi128_si256(_mm_unpacklo_epi16(sc16, sc16)),
                                  _mm256_broadcastsi128_si256(_mm_unpackhi_epi16(sc16, sc16))};
  // Each min twice, to pair with the two bsums of its group.
  const __m256i mn_pairs =
      _mm256_setr_m128i(_mm_unpacklo_epi16(mn16, mn16), _mm_unpackhi_epi16(mn16, mn16));
  __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int h = 0; h < 4; ++h) {
    __m256i lo, hi;
    q45k_quants(w, h, lo, hi);
    const __m256i plo = _mm256_maddubs_epi16(lo, load_256(x.qs + 64 * h));
    const __m256i phi = _mm256_maddubs_epi16(hi, load_256(x.qs + 64 * h + 32));
    const __m256i pairs = scale_pairs[h / 2];
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(plo, dword_broadcast(pairs, 2 * (h % 2))));
    acc[1] =
        _mm256_add_epi32(acc[1], _mm256_madd_epi16(phi, dword_broadcast(pairs, 2 * (h % 2) + 1)));
  }
  return {_mm256_add_epi32(acc[0], acc[1]), _mm256_madd_epi16(load_256(x.bsums), mn_pairs)};
}

// ---- Q6_K ----

// isum = sum_g scales_g sum q x, q = (4 low bits | 2 high bits << 4) - 32.
[[gnu::always_inline]] inline Lanes sums_q6_k(const BlockQ6_K& w, const BlockQ8_K& x) {
  const __m256i sc16 =
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
  const auto quants = [&](int h, int k) { return q6k_quants(w, h, k); };
  return {_mm256_sub_epi32(group16_dot(quants, sc16, x.qs),
                           _mm256_slli_epi32(scaled_bsums(sc16, x), 5)),
          _mm256_setzero_si256()};
}

// ---- legacy 32-element blocks: Q5_0 x Q8_0, Q4_1 x Q8_1, Q5_1 x Q8_1 ----
// Eight blocks' int32 vectors are reduced together to their 8 block sums and the 8 block terms
// are formed in float lanes with the reference's operations (no FMA: the files are built with
// -ffp-contract=off), then added into 8 lane accumulators; the tail blocks one by one.

// Q5_0: q - 16 as int8 (-16..15). Without its 5th bit, nibble - 16 = nibble | 0xF0 in two's
// complement; with it, q - 16 is the nibble itself.
__m256i block_sum_q5_0(const BlockQ5_0& w, const BlockQ8_0& x) {
  const __m256i q = _mm256_or_si256(
      nibbles32(w.qs),
      _mm256_andnot_si256(bit_mask32(w.qh), _mm256_set1_epi8(static_cast<char>(0xF0))));
  return dot_i8x32(q, load_256(x.qs));
}

__m256i block_sum_q4_1(const BlockQ4_1& w, const BlockQ8_1& x) {
  return dot_u8x32(nibbles32(w.qs), load_256(x.qs));
}

__m256i block_sum_q5_1(const BlockQ5_1& w, const BlockQ8_1& x) {
  const __m256i high = _mm256_and_si256(bit_mask32(w.qh), _mm256_set1_epi8(0x10));
  return dot_u8x32(_mm256_or_si256(nibbles32(w.qs), high), load_256(x.qs));
}

// sum_b float(sumi_b) * (d_w d_x) [+ m_w s_x for the types with a min]. The fp16 fields: d first
// in every block, then m (Q4_1, Q5_1) and s (Q8_1).
template <typename W, typename X, __m256i (*BlockSum)(const W&, const X&)>
float dot_blocks32(const void* w_row, const void* x_row, size_t n) {
  constexpr bool kHasMin = requires(W b) { b.m; };
  const auto* w = static_cast<const W*>(w_row);
  const auto* x = static_cast<const X*>(x_row);
  const size_t nb = n / 32;
  __m256 acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    __m256i sums[8];
    for (size_t j = 0; j < 8; ++j) sums[j] = BlockSum(w[i + j], x[i + j]);
    const auto* wb = reinterpret_cast<const uint8_t*>(&w[i]);
    const auto* xb = reinterpret_cast<const uint8_t*>(&x[i]);
    const __m256 dd = _mm256_mul_ps(fp16_fields8(wb, sizeof(W)), fp16_fields8(xb, sizeof(X)));
    __m256 term = _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8(sums)), dd);
    if constexpr (kHasMin) {
      term = _mm256_add_ps(
          term, _mm256_mul_ps(fp16_fields8(wb + 2, sizeof(W)), fp16_fields8(xb + 2, sizeof(X))));
    }
    acc = _mm256_add_ps(acc, term);
  }
  float tail = 0.0f;
  for (; i < nb; ++i) {
    const auto sumi = static_cast<float>(hsum_epi32(BlockSum(w[i], x[i])));
    float term = sumi * (half_to_float(w[i].d) * half_to_float(x[i].d));
    if constexpr (kHasMin) term = term + half_to_float(w[i].m) * half_to_float(x[i].s);
    tail += term;
  }
  return hsum_ps(acc) + tail;
}

}  // namespace

void add_avx2_kquant_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kQ2_K)] = dot_superblocks<BlockQ2_K, sums_q2_k, true>;
  k.vec_dot[static_cast<size_t>(DType::kQ3_K)] = dot_superblocks<BlockQ3_K, sums_q3_k, false>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_K)] =
      dot_superblocks<BlockQ4_K, sums_q45_k<BlockQ4_K>, true>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_K)] =
      dot_superblocks<BlockQ5_K, sums_q45_k<BlockQ5_K>, true>;
  k.vec_dot[static_cast<size_t>(DType::kQ6_K)] = dot_superblocks<BlockQ6_K, sums_q6_k, false>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_0)] = dot_blocks32<BlockQ5_0, BlockQ8_0, block_sum_q5_0>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_1)] = dot_blocks32<BlockQ4_1, BlockQ8_1, block_sum_q4_1>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_1)] = dot_blocks32<BlockQ5_1, BlockQ8_1, block_sum_q5_1>;
}

}  // namespace slm::isa
