// Helpers of the NEON forward-pass ops (neon_ops.cpp, neon_attention.cpp): the exp they share.
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

}  // namespace
}  // namespace slm::isa
