// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; dispatch.cpp calls them only on
// CPUs that have all three). Everything here lives in an anonymous namespace: an inline function
// shared with other translation units could be emitted with AVX2 code and picked by the linker
// for scalar callers.
//
// Quantized dots (see the contract in kernels/dispatch.h): per block, |x| * sign(w, x) through
// vpmaddubsw (u8 x s8 -> pairs of int16) and vpmaddwd (-> 8 int32), exact while weights and
// activations stay in [-127, 127] (every Q8_0 quantizer, ggml's and ours, clamps to that; Q4_0
// weights are in [-8, 7]). Eight blocks' int32 vectors are reduced together to their 8 block sums,
// then the block terms float(sumi) * (d_w * d_x) are formed exactly as the reference forms them
// and added into 8 lane accumulators.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_common.h"

namespace slm::isa {
namespace {

double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

__m256i load_q8_0(const BlockQ8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
}

// Q4_0 quants as int8 in element order: low nibbles are elements 0-15, high nibbles 16-31.
__m256i load_q4_0(const BlockQ4_0& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(q, m4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

// sum_b float(sumi_b) * (d_w * d_x) for weight blocks WBlock against Q8_0 activations.
template <typename WBlock, __m256i (*Load)(const WBlock&)>
float dot_with_q8_0(const void* w_row, const void* x_row, size_t n) {
  const auto* w = static_cast<const WBlock*>(w_row);
  const auto* x = static_cast<const BlockQ8_0*>(x_row);
  const size_t nb = n / kQK8_0;
  __m256 acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    __m256i sums[8];
    for (size_t j = 0; j < 8; ++j) sums[j] = dot_i8x32(Load(w[i + j]), load_q8_0(x[i + j]));
    const __m256 dd =
        _mm256_mul_ps(fp16_fields8(reinterpret_cast<const uint8_t*>(&w[i]), sizeof(WBlock)),
                      fp16_fields8(reinterpret_cast<const uint8_t*>(&x[i]), sizeof(BlockQ8_0)));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8(sums)), dd));
  }
  float tail = 0.0f;
  for (; i < nb; ++i) {
    const int32_t sumi = hsum_epi32(dot_i8x32(Load(w[i]), load_q8_0(x[i])));
    tail += static_cast<float>(sumi) * (half_to_float(w[i].d) * half_to_float(x[i].d));
  }
  return hsum_ps(acc) + tail;
}

// F32 dots: the products are exact in double, accumulated in double like the reference, in 4 x 4
// lanes. (F16 and BF16: avx2_float.cpp.)
float dot_f32(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const float*>(w_row);
  const auto* b = static_cast<const float*>(x_row);
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (size_t k = 0; k < 4; ++k) {
      const __m256d va = _mm256_cvtps_pd(_mm_loadu_ps(a + i + 4 * k));
      const __m256d vb = _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4 * k));
      acc[k] = _mm256_fmadd_pd(va, vb, acc[k]);
    }
  }
  double sum = hsum_pd(_mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

// F32 -> BF16 like the reference: round to nearest even on the low 16 bits (a carry into the
// exponent, up to Inf, is correct); NaN stays a quiet NaN.
__m256i f32_to_bf16_bits(__m256 v) {
  const __m256i x = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                            _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, quiet, is_nan);
}

void quantize_bf16(const float* src, void* dst, size_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // packus interleaves the 128-bit lanes: [a0-3 b0-3 a4-7 b4-7] -> reorder the quarters.
    const __m256i packed = _mm256_packus_epi32(f32_to_bf16_bits(_mm256_loadu_ps(src + i)),
                                               f32_to_bf16_bits(_mm256_loadu_ps(src + i + 8)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i),
                        _mm256_permute4x64_epi64(packed, 0xD8));
  }
  for (; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}

// F32 -> F16, round to nearest even (the reference's rounding).
void quantize_f16(const float* src, void* dst, size_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) h[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

float hmax_ps(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// roundf: half away from zero. t = trunc(|v|) is exact, so is |v| - t; add 1 when that is >= 0.5.
__m256 round_half_away(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign, v);
  const __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                  _mm256_set1_ps(1.0f));
  return _mm256_or_ps(_mm256_add_ps(t, up), _mm256_and_ps(v, sign));
}

// One block of 32 for Q8_0 / Q8_1 (ggml quantize_row_q8_0_ref): d = amax / 127,
// q = roundf(clamp(x / d)). NaN inputs are skipped by the max and become -127, as in the
// reference (operand order of max_ps matters). Writes the quants, returns d (unrounded) and, when
// `sum` is given, the sum of the quants.
float quantize_block_int8(const float* src, int8_t* qs, int32_t* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (size_t k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(src + 8 * k);
    amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax);
  }
  const float d = hmax_ps(amax) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (size_t k = 0; k < 4; ++k) {
    __m256 s = _mm256_max_ps(_mm256_mul_ps(v[k], vid), _mm256_set1_ps(-127.0f));
    s = _mm256_min_ps(s, _mm256_set1_ps(127.0f));
    q[k] = _mm256_cvttps_epi32(round_half_away(s));
  }
  // packs work per 128-bit lane; the permute puts the 4-byte groups back in element order.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), ordered);
  if (sum != nullptr) {
    *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
  }
  return d;
}

void quantize_q8_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (size_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    b[i].d = _cvtss_sh(quantize_block_int8(src, b[i].qs, nullptr), _MM_FROUND_TO_NEAREST_INT);
  }
}

// Q8_1 (ggml quantize_row_q8_1_ref): as Q8_0, plus s = fp16(sum(q) * d) with d unrounded.
void quantize_q8_1(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (size_t i = 0; i < n / kQK8_1; ++i, src += kQK8_1) {
    int32_t sum = 0;
    const float d = quantize_block_int8(src, b[i].qs, &sum);
    b[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    b[i].s = _cvtss_sh(static_cast<float>(sum) * d, _MM_FROUND_TO_NEAREST_INT);
  }
}

// Q8_K (ggml quantize_row_q8_K_ref): max = the signed value of largest |x| (the first on ties),
// q = clamp(nearest_int(-127 / max * x), -128, 127), bsums = sums of 16, d = max / -127 as
// 1 / iscale. vcvtps2dq rounds half to even under the default MXCSR mode, like nearest_int; NaN
// products become 0, as nearest_int makes them.
void quantize_q8_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    __m256 vmax = _mm256_setzero_ps();
    for (size_t k = 0; k < kQK_K; k += 8) {
      vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(src + k)), vmax);
    }
    const float amax = hmax_ps(vmax);
    if (amax == 0.0f) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    float max = amax;
    for (size_t k = 0; k < kQK_K; k += 8) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(src + k));
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (mask != 0) {
        max = src[k + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    for (size_t g = 0; g < kQK_K / 16; ++g) {
      __m256i q[2];
      for (size_t h = 0; h < 2; ++h) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + 16 * g + 8 * h), vs);
        v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
        q[h] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(-128)),
                                _mm256_set1_epi32(127));
      }
      b[i].bsums[g] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(q[0], q[1])));
      const __m128i w0 = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
      const __m128i w1 = _mm_packs_epi32(_mm256_castsi256_si128(q[1]), _mm256_extracti128_si256(q[1], 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * g), _mm_packs_epi16(w0, w1));
    }
    b[i].d = 1.0f / iscale;
  }
}

}  // namespace

void add_avx2_kernels(KernelSet& k) {
  add_avx2_ops(k.ops);
  add_avx2_gemm_tiles(k);
  add_avx2_kquant_kernels(k);
  add_avx2_kquant_tiles(k);
  add_avx2_kquant_repacking(k);
  add_avx2_float_kernels(k);
  k.vec_dot[static_cast<size_t>(DType::kF32)] = dot_f32;
  k.vec_dot[static_cast<size_t>(DType::kQ8_0)] = dot_with_q8_0<BlockQ8_0, load_q8_0>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_0)] = dot_with_q8_0<BlockQ4_0, load_q4_0>;
  k.quantize[static_cast<size_t>(DType::kF16)] = quantize_f16;
  k.quantize[static_cast<size_t>(DType::kBF16)] = quantize_bf16;
  k.quantize[static_cast<size_t>(DType::kQ8_0)] = quantize_q8_0;
  k.quantize[static_cast<size_t>(DType::kQ8_1)] = quantize_q8_1;
  k.quantize[static_cast<size_t>(DType::kQ8_K)] = quantize_q8_k;
}

}  // namespace slm::isa
