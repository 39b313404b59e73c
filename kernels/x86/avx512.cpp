// AVX-512 (F, BW, VL) + VNNI + F16C kernels, compiled with those flags; dispatch.cpp registers
// them over the AVX2 set (this ISA implies AVX2) only on CPUs that have all of them. Everything
// lives in an anonymous namespace, for the reason given in avx2.cpp.
//
// Quantized dots (contract in kernels/dispatch.h): vpdpbusd multiplies u8 by s8. Q8_0 weights go
// in as w + 128 (w ^ 0x80) and 128 * sum(x) is subtracted; Q4_0 nibbles go in as they are and
// 8 * sum(x) is subtracted. Both are exact for every int8 value. A zmm holds two blocks; 16
// blocks' vectors are reduced together to their 16 block sums, then the block terms
// float(sumi) * (d_w * d_x) are formed as the reference forms them and added into 16 lanes.
// GCC 12's AVX-512 headers build many intrinsics on _mm512_undefined_*() values, which its
// uninitialized-use analysis flags inside the headers (a compiler bug, not ours).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/quant.h"

namespace slm::isa {
namespace {

int32_t hsum_epi32_256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// Lane j of reduce16's result is the sum of block kLaneBlock[j] (see reduce16).
constexpr int kLaneBlock[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};

// The fp16 scales of blocks first[kLaneBlock[j] * stride], as floats in reduce16's lane order.
// The gather reads 4 bytes at each block start: d and the block's next two bytes.
__m512 block_scales16(const uint8_t* first, int stride) {
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_setr_epi32(kLaneBlock[0], kLaneBlock[1], kLaneBlock[2], kLaneBlock[3], kLaneBlock[4],
                        kLaneBlock[5], kLaneBlock[6], kLaneBlock[7], kLaneBlock[8], kLaneBlock[9],
                        kLaneBlock[10], kLaneBlock[11], kLaneBlock[12], kLaneBlock[13],
                        kLaneBlock[14], kLaneBlock[15]),
      _mm512_set1_epi32(stride));
  const __m512i words = _mm512_i32gather_epi32(idx, first, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

// v[k] holds the 8 int32 partial sums of block 2k (low 256 bits) and block 2k+1 (high 256).
// Returns the 16 block sums, lane j = block kLaneBlock[j]: two transposing unpack+add rounds sum
// within 128-bit lanes, then the two 128-bit halves of each block are added.
__m512i reduce16(const __m512i* v) {
  auto pairs = [](__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  };
  auto quads = [](__m512i ab, __m512i cd) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  };
  const __m512i r0 = quads(pairs(v[0], v[1]), pairs(v[2], v[3]));
  const __m512i r1 = quads(pairs(v[4], v[5]), pairs(v[6], v[7]));
  return _mm512_add_epi32(_mm512_shuffle_i64x2(r0, r1, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i64x2(r0, r1, _MM_SHUFFLE(3, 1, 3, 1)));
}

__m512i load2_q8(const BlockQ8_0* x) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[0].qs));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[1].qs));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Two blocks of sum w . x, 8 int32 lanes each. Q8_0: (w + 128) . x - 128 sum(x).
__m512i dot2_q8_0(const BlockQ8_0* w, __m512i x) {
  const __m512i u = _mm512_xor_si512(load2_q8(w), _mm512_set1_epi8(static_cast<char>(0x80)));
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x);
  const __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), x);
  return _mm512_sub_epi32(s, c);
}

// Q4_0: nibbles [lo0, hi0, lo1, hi1] (16 bytes each) in element order, then nib . x - 8 sum(x).
__m512i dot2_q4_0(const BlockQ4_0* w, __m512i x) {
  const __m256i q = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0].qs))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1].qs)), 1);
  const __m512i z = _mm512_castsi256_si512(q);
  const __m512i dup = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0));  // [q0, q0, q1, q1]
  const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                          0x0004000400040004, 0x0004000400040004);
  const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(dup, shift), _mm512_set1_epi8(0x0F));
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib, x);
  const __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x);
  return _mm512_sub_epi32(s, c);
}

// One block on 256-bit vectors, for the tail.
int32_t dot1_q8_0(const BlockQ8_0& w, const BlockQ8_0& x) {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qs)),
                                     _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xv);
  const __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(0x80)), xv);
  return hsum_epi32_256(_mm256_sub_epi32(s, c));
}

int32_t dot1_q4_0(const BlockQ4_0& w, const BlockQ8_0& x) {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m256i nib =
      _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nib, xv);
  const __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), xv);
  return hsum_epi32_256(_mm256_sub_epi32(s, c));
}

template <typename WBlock, __m512i (*Dot2)(const WBlock*, __m512i),
          int32_t (*Dot1)(const WBlock&, const BlockQ8_0&)>
float dot_with_q8_0(const void* w_row, const void* x_row, size_t n) {
  const auto* w = static_cast<const WBlock*>(w_row);
  const auto* x = static_cast<const BlockQ8_0*>(x_row);
  const size_t nb = n / kQK8_0;
  __m512 acc = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= nb; i += 16) {
    __m512i sums[8];
    for (size_t k = 0; k < 8; ++k) sums[k] = Dot2(&w[i + 2 * k], load2_q8(&x[i + 2 * k]));
    const __m512 dd = _mm512_mul_ps(
        block_scales16(reinterpret_cast<const uint8_t*>(&w[i]), static_cast<int>(sizeof(WBlock))),
        block_scales16(reinterpret_cast<const uint8_t*>(&x[i]), static_cast<int>(sizeof(BlockQ8_0))));
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(reduce16(sums)), dd));
  }
  float tail = 0.0f;
  for (; i < nb; ++i) {
    tail += static_cast<float>(Dot1(w[i], x[i])) * (half_to_float(w[i].d) * half_to_float(x[i].d));
  }
  return _mm512_reduce_add_ps(acc) + tail;
}

// Float dots: exact products accumulated in double (as the reference), 4 x 8 lanes.
float dot_f32(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const float*>(w_row);
  const auto* b = static_cast<const float*>(x_row);
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(),
                    _mm512_setzero_pd()};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (size_t k = 0; k < 4; ++k) {
      const __m512d va = _mm512_cvtps_pd(_mm256_loadu_ps(a + i + 8 * k));
      const __m512d vb = _mm512_cvtps_pd(_mm256_loadu_ps(b + i + 8 * k));
      acc[k] = _mm512_fmadd_pd(va, vb, acc[k]);
    }
  }
  double sum = _mm512_reduce_add_pd(
      _mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

float dot_f16(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const uint16_t*>(w_row);
  const auto* b = static_cast<const uint16_t*>(x_row);
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(),
                    _mm512_setzero_pd()};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (size_t k = 0; k < 2; ++k) {
      const __m512 va = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16 * k)));
      const __m512 vb = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 16 * k)));
      const __m512 p = _mm512_mul_ps(va, vb);  // exact: 11-bit x 11-bit significands
      acc[2 * k] = _mm512_add_pd(acc[2 * k], _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
      acc[2 * k + 1] = _mm512_add_pd(
          acc[2 * k + 1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
    }
  }
  double sum = _mm512_reduce_add_pd(
      _mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
  for (; i < n; ++i) {
    sum += static_cast<double>(half_to_float(a[i])) * static_cast<double>(half_to_float(b[i]));
  }
  return static_cast<float>(sum);
}

}  // namespace

void add_avx512_kernels(KernelSet& k) {
  add_avx512_ops(k.ops);
  k.vec_dot[static_cast<size_t>(DType::kF32)] = dot_f32;
  k.vec_dot[static_cast<size_t>(DType::kF16)] = dot_f16;
  k.vec_dot[static_cast<size_t>(DType::kQ8_0)] = dot_with_q8_0<BlockQ8_0, dot2_q8_0, dot1_q8_0>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_0)] = dot_with_q8_0<BlockQ4_0, dot2_q4_0, dot1_q4_0>;
  // The AVX2 tiles (plain and repacked) equal the AVX2 dots bit for bit, not these 16-lane dots,
  // and a batch must give what each token gives alone: prefill uses these dots too, and weights
  // stay rows (AVX-512 tiles are unmeasured: the machines here have no AVX-512).
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    const auto id = static_cast<size_t>(t);
    k.gemm_tile[id] = nullptr;
    k.repacked[id] = {};
  }
}

}  // namespace slm::isa
