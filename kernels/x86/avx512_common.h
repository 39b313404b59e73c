// Helpers of the AVX-512 tiles that take two repacked runs at once (TileRepacking::tile_pair):
// avx512_gemm.cpp and, compiled with the AVX-512 flags, kquant_columns.h. Each run's 8 rows are
// one 256-bit half of a 512-bit vector, lanes 8..15 for the second run.
//
// Include only from files compiled with the AVX-512 F/VL + VNNI flags; internal linkage, as in
// avx2_common.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace slm::isa {
namespace {

// Two 256-bit halves as one vector (floats through doubles: insertf32x8 would need AVX-512 DQ).
inline __m512i join(__m256i low, __m256i high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}
inline __m512 join(__m256 low, __m256 high) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)),
                                             _mm256_castps_pd(high), 1));
}

// sum + in each 32-bit lane, the 4 unsigned bytes of q there times the 4 signed bytes at x:
// vpdpbusd with x broadcast from memory, one instruction. GCC 12 does not form that from a set1
// but loads the broadcast apart, and the Q4_0 tiles then ran ~10 % slower
// (BM_Matmul q4_0_t1_repacked_pp512: 213-224 -> 237-247 GFLOP/s).
[[gnu::always_inline]] inline __m256i dpbusd_broadcast(__m256i sum, __m256i q, const void* x) {
  asm("vpdpbusd %2%{1to8%}, %1, %0"
      : "+v"(sum)
      : "v"(q), "m"(*static_cast<const uint8_t(*)[4]>(x)));
  return sum;
}
[[gnu::always_inline]] inline __m512i dpbusd_broadcast(__m512i sum, __m512i q, const void* x) {
  asm("vpdpbusd %2%{1to16%}, %1, %0"
      : "+v"(sum)
      : "v"(q), "m"(*static_cast<const uint8_t(*)[4]>(x)));
  return sum;
}

// hsum_ps_lanes (avx2_common.h) in each half: lane r of the result sums lane r of a[0..7] in
// hsum_ps's order.
inline __m512 hsum_ps_lanes(const __m512* a) {
  return _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
      _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])));
}

}  // namespace
}  // namespace slm::isa
