// Baseline ASIMD versions of the forward pass's row and element-wise ops (formulas in
// kernels/ref/ops.h), 4 lanes at a time; a row's last n % 4 elements take the same operations one
// at a time, so an element's value does not depend on where a row or chunk starts. Agreement with
// the references (tests/simd_ops_test.cpp), as for the x86 sets:
//   - add: bit-identical;
//   - rms_norm: the same double sum of exact squares in another order, then the same float ops;
//   - softmax, swiglu: exp is neon_vec.h's approximation (max relative error 3e-7), so results
//     agree to ~1e-6 relative.
// RoPE, LayerNorm and GELU stay the references'. Attention is neon_attention.cpp's.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/arm/neon_vec.h"
#include "kernels/isa_kernels.h"

namespace slm::isa {
namespace {

void rms_norm(const float* x, const float* w, float eps, float* y, size_t n) {
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
    s0 = vfmaq_f64(s0, lo, lo);  // float² is exact in double: only the adds round
    s1 = vfmaq_f64(s1, hi, hi);
  }
  double sum_sq = vaddvq_f64(vaddq_f64(s0, s1));
  for (size_t e = i; e < n; ++e) sum_sq += double(x[e]) * double(x[e]);
  const float scale = 1.0f / std::sqrt(float(sum_sq / double(n)) + eps);
  for (i = 0; i + 4 <= n; i += 4) {
    float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
    if (w) v = vmulq_f32(v, vld1q_f32(w + i));
    vst1q_f32(y + i, v);
  }
  for (; i < n; ++i) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void softmax(float* x, size_t n) {
  const float max = *std::max_element(x, x + n);
  const float32x4_t m = vdupq_n_f32(max);
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), m));
    vst1q_f32(x + i, e);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; ++i) sum += x[i] = exp1(x[i] - max);
  const auto inv = float(1.0 / sum);
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* g, const float* u, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t gv = vld1q_f32(g + i);
    const float32x4_t silu = vdivq_f32(gv, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(gv))));
    vst1q_f32(y + i, vmulq_f32(silu, vld1q_f32(u + i)));
  }
  for (; i < n; ++i) y[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

void add(float* y, const float* x, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] += x[i];
}

}  // namespace

void add_neon_ops(OpsSet& ops) {
  ops.rms_norm = rms_norm;
  ops.softmax = softmax;
  ops.swiglu = swiglu;
  ops.add = add;
  add_neon_attention(ops);
}

}  // namespace slm::isa
