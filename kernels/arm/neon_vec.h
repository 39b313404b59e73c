// Helpers of the NEON forward-pass ops (neon_ops.cpp, neon_attention.cpp): the exp they share,
// and the soft-cap built on it.
// Include only from kernels/arm; internal linkage, as in kernels/x86/avx2_vec.h.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <iterator>

#include "kernels/exp_approx.h"

namespace slm::isa {
namespace {

// e^x lane by lane: kernels/exp_approx.h's approximation (max relative error ≈ 3e-7), as the
// x86 sets' exp_ps.
inline float32x4_t exp4(float32x4_t x) {
  using namespace exp_approx;
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(kMin)), vdupq_n_f32(kMax));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, kLog2e));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(kLn2High));
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Low));
  float32x4_t p = vdupq_n_f32(kTaylor[0]);
  for (size_t i = 1; i < std::size(kTaylor); ++i) p = vfmaq_f32(vdupq_n_f32(kTaylor[i]), p, r);
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}

// One value through exp4, so that a row's last elements get what a vector lane would.
inline float exp1(float x) { return vgetq_lane_f32(exp4(vdupq_n_f32(x)), 0); }

// cap · tanh(x / cap), tanh(y) = sign(y) (1 − 2 / (e^(2|y|) + 1)), as the x86 sets' softcap:
// absolute error within 2e-7 · cap; where e^(2|y|) is huge the quotient is 0 and tanh 1.
inline float32x4_t softcap4(float32x4_t x, float cap) {
  const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  const float32x4_t e = exp4(vmulq_n_f32(vabsq_f32(x), 2.0f / cap));
  const float32x4_t t =
      vsubq_f32(vdupq_n_f32(1.0f), vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
  return vmulq_n_f32(vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sign)), cap);
}

// In place: x = cap · tanh(x / cap), the last n % 4 values one at a time through softcap4.
inline void softcap(float* x, float cap, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, softcap4(vld1q_f32(x + i), cap));
  for (; i < n; ++i) x[i] = vgetq_lane_f32(softcap4(vdupq_n_f32(x[i]), cap), 0);
}

}  // namespace
}  // namespace slm::isa
