// Columns: a tile's 8 weight rows rewritten at load so that 32-bit lane r of every vector holds
// quants of row r (avx2_kquant_repack.cpp for Q4_K and Q6_K, avx512_gemm.cpp for Q8_0, Q4_0 and
// Q5_0). Activation bytes 4j .. 4j + 3, broadcast to every lane, then meet operand j of all 8
// rows at once, and each row's sums build up in its own lane with no horizontal step.
//
// 4-bit quants of a 32-element group are kept as 4 vectors of nibbles: vector k, bytes
// 4r .. 4r + 3 hold elements 8k + i (low nibbles) and 8k + 4 + i (high nibbles), i = 0..3, of
// row r. Unpacked, they are 8 operands, operand j holding elements 4j + i.
//
// Include only from files compiled with the AVX2 flags (or more); internal linkage, as in
// avx2_common.h.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2_common.h"

namespace slm::isa {
namespace {

// Repacking works on 8 bytes at a time, as 64-bit words: byte by byte, `slm bench -p 0 -n 1` on
// TinyLlama Q4_K_M (its Q4_K and Q6_K repacked at load) took 1.0-1.3 s, word by word 0.37-0.39 s.
constexpr uint64_t kBytes(uint8_t b) { return b * 0x0101010101010101ull; }
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// A group's 32 quants of row r (element order; their low 4 bits) into its 4 nibble vectors.
inline void store_nibbles(const uint8_t* q, size_t r, uint8_t (*v)[32]) {
  for (size_t k = 0; k < 4; ++k) {
    const uint64_t low = load64(q + 8 * k) & kBytes(0x0F);
    const auto packed = static_cast<uint32_t>(low | (low >> 32) << 4);
    std::memcpy(&v[k][4 * r], &packed, sizeof(packed));
  }
}

// Where the nibble of (row r, element e < 32 of the group) lies in its 4 vectors: vector e / 8,
// byte 4r + e % 4, low nibble for e % 8 < 4.
struct NibbleAt {
  size_t k, byte, shift;
  NibbleAt(size_t r, size_t e) : k(e / 8), byte(4 * r + e % 4), shift(e % 8 < 4 ? 0 : 4) {}
};

// The 8 operands of a group from its 4 nibble vectors (unsigned, 0..15).
[[gnu::always_inline]] inline void nibble_operands(const uint8_t (*v)[32], __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), high_nibble_down = _mm256_set1_epi16(1 << 12);
  for (size_t k = 0; k < 4; ++k) {
    const __m256i bytes = load_256(v[k]);
    q[2 * k] = _mm256_and_si256(bytes, m4);
    // The high nibbles moved down by a multiply (x * 2^12 >> 16) rather than a shift: the
    // shuffle and shift pipes are the AVX2 K-quant loop's bottleneck, the multiply pipes are not.
    q[2 * k + 1] = _mm256_mulhi_epu16(_mm256_andnot_si256(m4, bytes), high_nibble_down);
  }
}

// Activation bytes 4j .. 4j + 3 of x in every lane.
[[gnu::always_inline]] inline __m256i broadcast4(const int8_t* x, size_t j) {
  int32_t v;
  std::memcpy(&v, x + 4 * j, sizeof(v));
  return _mm256_set1_epi32(v);
}

// A column's 8 fp16 scales, lane r for row r.
inline __m256 fp16x8(const uint16_t* h) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

}  // namespace
}  // namespace slm::isa
