// The F16 and BF16 dots and tiles of float_tiles.h in 256-bit vectors: 4 rows x 2 tokens, 8
// accumulators of the 16 registers (beside the converted vectors).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/float_tiles.h"

namespace slm::isa {
namespace {

struct Ymm {
  using F = __m256;
  static constexpr size_t kL = 8, kRowStep = 4, kTokenStep = 2;
  static constexpr bool kWidenF16 = false;
  static F zero() { return _mm256_setzero_ps(); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(F v) { return hsum_ps(v); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  // The first `count` 16-bit values at p, the rest zero (no masked 16-bit loads in AVX2).
  static __m128i halves(const uint16_t* p, size_t count) {
    if (count == kL) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    alignas(16) uint16_t buf[kL] = {};
    std::memcpy(buf, p, count * sizeof(uint16_t));
    return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
  }
  static F f16(const uint16_t* p, size_t count) { return _mm256_cvtph_ps(halves(p, count)); }
  // BF16 is the top half of an F32: widen each u16 and shift it up.
  static F bf16(const uint16_t* p, size_t count) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves(p, count)), 16));
  }
  static F f32(const float* p, size_t count) {
    if (count == kL) return _mm256_loadu_ps(p);
    alignas(32) float buf[kL] = {};
    std::memcpy(buf, p, count * sizeof(float));
    return _mm256_load_ps(buf);
  }
};

}  // namespace

void add_avx2_float_kernels(KernelSet& k) { add_float_kernels<Ymm>(k); }

}  // namespace slm::isa
