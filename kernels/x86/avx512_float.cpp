// The F16 and BF16 dots and tiles of float_tiles.h in 512-bit vectors: 8 rows x 3 tokens, 24 of
// the 32 registers.
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on

#include <cstddef>
#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/x86/float_tiles.h"

namespace slm::isa {
namespace {

struct Zmm {
  using F = __m512;
  static constexpr size_t kL = 16, kRowStep = 8, kTokenStep = 3;
  static constexpr bool kWidenF16 = true;
  static F zero() { return _mm512_setzero_ps(); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(F v) { return _mm512_reduce_add_ps(v); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static __mmask16 first(size_t count) { return static_cast<__mmask16>((1u << count) - 1); }
  static F f16(const uint16_t* p, size_t count) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first(count), p));
  }
  // BF16 is the top half of an F32: widen each u16 and shift it up.
  static F bf16(const uint16_t* p, size_t count) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(first(count), p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static F f32(const float* p, size_t count) { return _mm512_maskz_loadu_ps(first(count), p); }
};

}  // namespace

void add_avx512_float_kernels(KernelSet& k) { add_float_kernels<Zmm>(k); }

}  // namespace slm::isa
