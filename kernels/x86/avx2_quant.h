// AVX2 helpers for the quantized dots, shared by kernels/x86/avx2.cpp (row dots) and
// kernels/x86/avx2_gemm.cpp (prefill tiles), which must form block terms the same way. Include
// only from avx2*.cpp files: everything is in an anonymous namespace, so no AVX2 instance of these
// can be picked by the linker for code compiled without AVX2 (and inline, so a file that uses only
// some of them does not warn about the rest).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ref/blocks.h"

namespace slm::isa {
namespace {

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// The fp16 scales (first field of each block) of 8 consecutive blocks, as floats.
inline __m256 block_scales8(const uint8_t* first, size_t stride) {
  alignas(16) uint16_t h[8];
  for (size_t j = 0; j < 8; ++j) std::memcpy(&h[j], first + j * stride, sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

// [sum(v[0]), ..., sum(v[7])]: transposing horizontal adds.
inline __m256i reduce8(const __m256i* v) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i h0123 = _mm256_hadd_epi32(h01, h23);  // low half: blocks 0-3, low lanes
  const __m256i h4567 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

// 8 int32 partial sums of w . x over 32 int8 pairs (|w|, |x| <= 127, or |w| <= 8).
inline __m256i dot_i8x32(__m256i w, __m256i x) {
  const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
  return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}

inline __m256i load_q8_0(const BlockQ8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
}

// Q4_0 quants as stored, 0..15 (u8), in element order: low nibbles are elements 0-15, high 16-31.
inline __m256i load_q4_0_nibbles(const BlockQ4_0& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(q, m4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
  return _mm256_set_m128i(hi, lo);
}

// Q4_0 quants as int8 (nibble - 8) in element order.
inline __m256i load_q4_0(const BlockQ4_0& b) {
  return _mm256_sub_epi8(load_q4_0_nibbles(b), _mm256_set1_epi8(8));
}

}  // namespace
}  // namespace slm::isa
