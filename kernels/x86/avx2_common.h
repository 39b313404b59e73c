// Small AVX2 helpers shared by the kernels/x86/avx2*.cpp translation units. Include it only from
// files compiled with the AVX2 flags. Everything has internal linkage (an anonymous namespace): an
// inline function with external linkage could be emitted with AVX2 or AVX-512 code by several
// translation units and the linker would keep one copy for all callers.
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

// Lane r: hsum_ps of [a[0][r], ..., a[7][r]], in its order ((a0 + a4) + (a2 + a6)) + ((a1 + a5) +
// (a3 + a7)): the tiles that keep a row dot's 8 accumulator lanes as 8 vectors, a row per lane.
inline __m256 hsum_ps_lanes(const __m256* a) {
  return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6])),
                       _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7])));
}

// Zeroes the accumulators of a tile's first n_tokens tokens (acc[t][lane]; the rest are never
// read). Inlined, so a one-token tile keeps its accumulators in registers.
template <size_t kLanes>
[[gnu::always_inline]] inline void zero_accumulators(__m256 (*acc)[kLanes], size_t n_tokens) {
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t l = 0; l < kLanes; ++l) acc[t][l] = _mm256_setzero_ps();
  }
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// How far ahead of a weight stream the decode kernels prefetch: far enough to cover DRAM latency
// at full bandwidth, near enough to stay in L1/L2.
constexpr size_t kPrefetchBytes = 4096;

// Asks for the kBytes that lie kPrefetchBytes after p, into L1: a decode kernel calls it for
// every piece of its weight stream as it reaches it, so the requests keep pace with the reads.
// Every piece must ask: the tail groups of a repacked Q4_0 run once did not, and at 151936 x 896
// (4 of a tile's 7 groups are tail groups) the stream ran a third slower.
template <size_t kBytes>
[[gnu::always_inline]] inline void prefetch_ahead(const uint8_t* p) {
  for (size_t c = 0; c < kBytes; c += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes + c), _MM_HINT_T0);
  }
}

inline __m256i load_256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The fp16 fields at `first + j * stride` (j = 0..7), as floats: e.g. the scales of 8 blocks.
// Inserted lane by lane: 8 scalar stores read back as one vector would miss store-to-load
// forwarding and stall.
inline __m256 fp16_fields8(const uint8_t* first, size_t stride) {
  __m128i h = _mm_setzero_si128();
  const auto field = [&](size_t j) {
    uint16_t v;
    std::memcpy(&v, first + j * stride, sizeof(v));
    return static_cast<int>(v);
  };
  h = _mm_insert_epi16(h, field(0), 0);
  h = _mm_insert_epi16(h, field(1), 1);
  h = _mm_insert_epi16(h, field(2), 2);
  h = _mm_insert_epi16(h, field(3), 3);
  h = _mm_insert_epi16(h, field(4), 4);
  h = _mm_insert_epi16(h, field(5), 5);
  h = _mm_insert_epi16(h, field(6), 6);
  h = _mm_insert_epi16(h, field(7), 7);
  return _mm256_cvtph_ps(h);
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

// 8 int32 partial sums of w . x over 32 int8 pairs (|w|, |x| <= 127, or |w| <= 16).
inline __m256i dot_i8x32(__m256i w, __m256i x) {
  const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
  return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}

// 8 int32 partial sums of q . x over 32 pairs, q unsigned and x signed bytes. Exact while
// 2 * max(q) * 128 <= 32767 (vpmaddubsw saturates its int16 pair sums): q <= 127.
inline __m256i dot_u8x32(__m256i q, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
}

// A block's 32 nibbles as bytes in element order: low nibbles are elements 0-15, high 16-31.
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  return _mm256_setr_m128i(_mm_and_si128(q, m4), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
}

// Byte j = 0xFF where bit j of the little-endian word qh (a Q5 block's 5th bits) is set, else 0.
inline __m256i bit_mask32(const uint8_t* qh) {
  const __m256i word = _mm256_set1_epi32(static_cast<int>(load_u32_le(qh)));
  // Byte j takes byte j / 8 of the word, then keeps bit j % 8.
  const __m256i spread = _mm256_shuffle_epi8(
      word, _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// The inverse of nibbles32: element-order nibbles (< 16) back into a block's 16 bytes.
inline void store_nibbles32(__m256i q, uint8_t* qs) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
}

// A Q5_0 block's quants as unsigned bytes in element order: q in [0, 31] (nibble | 5th bit << 4).
inline __m256i q5_0_quants(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(nibbles32(qs), _mm256_and_si256(bit_mask32(qh), _mm256_set1_epi8(0x10)));
}

// The inverse of q5_0_quants.
inline void store_q5_0_quants(__m256i q, uint8_t* qs, uint8_t* qh) {
  store_nibbles32(_mm256_and_si256(q, _mm256_set1_epi8(0x0F)), qs);
  // Bit 4 of each byte up to its sign bit, where vpmovmskb reads it.
  const auto bits = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(q, 3)));
  std::memcpy(qh, &bits, sizeof(bits));  // little-endian, as the format stores it
}

}  // namespace
}  // namespace slm::isa
