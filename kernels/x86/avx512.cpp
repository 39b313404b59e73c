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

}  // namespace

void add_avx512_kernels(KernelSet& k) {
  add_avx512_ops(k.ops);
  add_avx512_repacking(k);
  add_avx512_kquant_repacking(k);
  add_avx512_float_kernels(k);
  k.vec_dot[static_cast<size_t>(DType::kF32)] = dot_f32;
}

}  // namespace slm::isa
