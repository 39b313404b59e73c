// Decoders of the K-quant blocks' packed fields shared by the AVX2 K-quant dots
// (avx2_kquant.cpp) and tiles (avx2_kquant_gemm.cpp). Include it only from files compiled with
// the AVX2 flags; internal linkage, as in avx2_common.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/ref/blocks.h"
#include "kernels/x86/avx2_common.h"

namespace slm::isa {
namespace {

// vpshufb control that copies int16 lane `lo` of each 128-bit half into the whole low half and
// lane `hi` into the whole high half.
inline __m256i int16_lane_pick(int lo, int hi) {
  return _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * lo)),
                           _mm_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * hi)));
}

// 16-element groups (Q2_K, Q3_K, Q6_K): the 32 weights at 128h + 32k cover groups 8h + 2k (low
// half of a register) and 8h + 2k + 1 (high half). `sc16` holds the 16 group scales as int16
// (groups 0-7 in the low half, 8-15 in the high half); this returns the pair for (h, k).
inline __m256i group16_scales(__m256i sc16, int h, int k) {
  const __m256i half = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                              : _mm256_permute2x128_si256(sc16, sc16, 0x11);
  return _mm256_shuffle_epi8(half, int16_lane_pick(2 * k, 2 * k + 1));
}

// Bits 2k..2k+1 of each byte (k = 0..3): the 2-bit quants of Q2_K / Q3_K chunk k.
inline __m256i two_bits(__m256i v, int k) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
}

// Bit b of each byte moved to bit `to` (every other bit cleared).
inline __m256i bit_to(__m256i v, int b, int to) {
  const __m256i moved = b >= to ? _mm256_srl_epi16(v, _mm_cvtsi32_si128(b - to))
                                : _mm256_sll_epi16(v, _mm_cvtsi32_si128(to - b));
  return _mm256_and_si256(moved, _mm256_set1_epi8(static_cast<char>(1 << to)));
}

// The 16 signed 6-bit group scales (s - 32) of a Q3_K block, as int8 in group order. Group j's
// low nibble is in byte j % 8 (low nibble for j < 8, high for j >= 8), its top 2 bits are bits
// 2 * (j / 4) of byte 8 + j % 4; read as little-endian words, four groups per word.
inline __m128i q3k_scales(const uint8_t* packed) {
  const uint32_t a = load_u32_le(packed), b = load_u32_le(packed + 4);
  const uint32_t c = load_u32_le(packed + 8);
  const uint32_t lo4 = 0x0F0F0F0F, lo2 = 0x03030303;
  const __m128i s = _mm_setr_epi32(static_cast<int>((a & lo4) | ((c & lo2) << 4)),
                                   static_cast<int>((b & lo4) | (((c >> 2) & lo2) << 4)),
                                   static_cast<int>(((a >> 4) & lo4) | (((c >> 4) & lo2) << 4)),
                                   static_cast<int>(((b >> 4) & lo4) | (((c >> 6) & lo2) << 4)));
  return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

// The 6-bit scales (bytes 0-7) and mins (bytes 8-15) of the 8 groups of a Q4_K / Q5_K block
// (k4_scale_min's layout, read as little-endian words a, b, c: groups 0-3 are the low 6 bits of
// a / b, groups 4-7 a nibble of c plus the top 2 bits of a / b). In vector lanes rather than
// scalar words: this runs once per super-block of every decode dot.
inline __m128i k4_scales_mins(const uint8_t* packed) {
  // The block's 12 scale bytes are followed by its quants, so a 16-byte load stays inside it.
  const __m128i abc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  // Dwords (a & lo6, c & lo4, b & lo6, (c >> 4) & lo4) ...
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(abc, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
      _mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
  // ... with the top 2 bits of a / b, ((a >> 6) & lo2) << 4, on the second and fourth.
  const __m128i top =
      _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(abc, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                    _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, top);
}

// Unsigned quants (0..7) of Q3_K elements 128h + 32k .. + 31 (q - 4 is the signed quant): bits
// 2k..2k+1 of qs[32h + l], and bit 4h + k of hmask[l] as bit 2.
inline __m256i q3k_quants(__m256i qs_h, __m256i hmask, int h, int k) {
  return _mm256_or_si256(two_bits(qs_h, k), bit_to(hmask, 4 * h + k, 2));
}

// Unsigned quants (0..63) of Q6_K elements 128h + 32k .. + 31 (q - 32 is the signed quant):
// nibble k >> 1 of ql[64h + 32(k & 1) + l], bits 2k..2k+1 of qh[32h + l] on top.
inline __m256i q6k_quants(const BlockQ6_K& w, int h, int k) {
  const __m256i ql = load_256(w.ql + 64 * h + 32 * (k & 1));
  const __m256i low =
      _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
  return _mm256_or_si256(low, _mm256_slli_epi16(two_bits(load_256(w.qh + 32 * h), k), 4));
}

// Unsigned quants of Q4_K / Q5_K elements 64h .. 64h + 31 (lo: low nibbles of qs[32h + l]) and
// 64h + 32 .. 64h + 63 (hi: high nibbles); Q5_K puts bit 2h / 2h + 1 of qh[l] on top as bit 4.
template <typename W>
inline void q45k_quants(const W& w, int h, __m256i& lo, __m256i& hi) {
  const __m256i q = load_256(w.qs + 32 * h);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  lo = _mm256_and_si256(q, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  if constexpr (requires(W b) { b.qh; }) {
    const __m256i hbits = load_256(w.qh);
    lo = _mm256_or_si256(lo, bit_to(hbits, 2 * h, 4));
    hi = _mm256_or_si256(hi, bit_to(hbits, 2 * h + 1, 4));
  }
}

}  // namespace
}  // namespace slm::isa
