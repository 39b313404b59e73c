// Helpers of the NEON forward-pass ops (neon_ops.cpp, neon_attention.cpp): the exp they share.
// Include only from kernels/arm; internal linkage, as in kernels/x86/avx2_vec.h.
#pragma once

#include <arm_neon.h>

namespace slm::isa {
namespace {

// e^x lane by lane, as the x86 sets' exp_ps: x = n ln2 + r with |r| ≤ ln2 / 2 (ln2 in two
// parts, so n ln2 is exact to float precision), e^r by its degree-7 Taylor polynomial
// (truncation error ≤ 0.347⁸/8! ≈ 5e-9), then 2^n through the exponent bits (x clamped to
// [-87, 88], so n stays in the normal range). Max relative error ≈ 3e-7 (rounding in Horner's
// rule).
inline float32x4_t exp4(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.0f / 5040);
  for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) {
    p = vfmaq_f32(vdupq_n_f32(c), p, r);
  }
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}

// One value through exp4, so that a row's last elements get what a vector lane would.
inline float exp1(float x) { return vgetq_lane_f32(exp4(vdupq_n_f32(x)), 0); }

}  // namespace
}  // namespace slm::isa
