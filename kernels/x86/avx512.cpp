// AVX-512 (F, BW, VL) + VNNI + F16C kernels, compiled with those flags; dispatch.cpp registers
// them over the AVX2 set (this ISA implies AVX2) only on CPUs that have all of them. Everything
// lives in an anonymous namespace, for the reason given in avx2.cpp.
//
// Quantized weights keep the AVX2 row dots and plain-row tiles; Q8_0, Q4_0 and Q5_0 weights
// repacked at load get VNNI tiles (avx512_gemm.cpp) equal to those dots bit for bit. 16-lane
// VNNI row dots for Q8_0 and Q4_0 once stood here, and with them weights stayed rows, as no tile
// equalled those dots: on a 16-core Xeon with AVX-512 VNNI, SmolLM2-135M Q4_0 decoded at 191 t/s
// with them against 289 with the AVX2 set (tg64, 2 threads). F16 and BF16 weights get their own
// dots and tiles (avx512_float.cpp); F32 ones keep the double-summing dot below.
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on

#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"

namespace slm::isa {
namespace {

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

// Q8_0 activations (ggml quantize_row_q8_0_ref), a block in two vectors, the same operations
// as avx2.cpp's quantize_block_int8 per element (the same bytes): d = amax / 127 (NaN skipped by
// the max, as there), q = roundf(clamp(x / d)), rounding half away from zero.
void quantize_q8_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  const __m512i sign = _mm512_set1_epi32(INT32_MIN);
  for (size_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    const __m512 v[2] = {_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16)};
    __m512 amax = _mm512_setzero_ps();
    for (const __m512& x : v) amax = _mm512_max_ps(_mm512_abs_ps(x), amax);
    const float d = _mm512_reduce_max_ps(amax) / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    for (size_t k = 0; k < 2; ++k) {
      __m512 s = _mm512_max_ps(_mm512_mul_ps(v[k], id), _mm512_set1_ps(-127.0f));
      s = _mm512_min_ps(s, _mm512_set1_ps(127.0f));
      // roundf: t = trunc(|s|) is exact, so is |s| - t; add 1 where that is >= 0.5.
      const __m512 a = _mm512_abs_ps(s);
      const __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 up =
          _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
      const __m512i rounded =
          _mm512_castps_si512(_mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f)));
      const __m512 r = _mm512_castsi512_ps(
          _mm512_or_si512(rounded, _mm512_and_si512(_mm512_castps_si512(s), sign)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * k),
                       _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r)));
    }
    b[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
  }
}

}  // namespace

void add_avx512_kernels(KernelSet& k) {
  add_avx512_ops(k.ops);
  add_avx512_repacking(k);
  add_avx512_kquant_repacking(k);
  add_avx512_float_kernels(k);
  k.vec_dot[static_cast<size_t>(DType::kF32)] = dot_f32;
  k.quantize[static_cast<size_t>(DType::kQ8_0)] = quantize_q8_0;
}

}  // namespace slm::isa
