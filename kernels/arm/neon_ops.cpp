// Baseline ASIMD versions of the forward pass's row and element-wise ops (formulas in
// kernels/ref/ops.h), 4 lanes at a time; a row's last n % 4 elements take the same operations one
// at a time, so an element's value does not depend on where a row or chunk starts. Agreement with
// the references (tests/simd_ops_test.cpp), as for the x86 sets:
//   - add, rope: bit-identical (the same products and sums);
//   - rms_norm, layer_norm: the same double sums in another order, then the same float ops;
//   - softmax, swiglu, gelu, softcap: exp is neon_vec.h's approximation (max relative error
//     3e-7), so results agree to ~1e-6 relative (softcap: within 2e-7 · cap absolute).
// Attention is neon_attention.cpp's.
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

// The reference's double sums (Σx, then Σ(x − mean)² with the difference taken in double) in
// another order; then its float steps, lane by lane: ((x − m) · scale) · w + b.
void layer_norm(const float* x, const float* w, const float* b, float eps, float* y, size_t n) {
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(v)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(v));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (size_t e = i; e < n; ++e) sum += x[e];
  const double mean = sum / double(n);
  const float64x2_t mean2 = vdupq_n_f64(mean);
  s0 = s1 = vdupq_n_f64(0.0);
  for (i = 0; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(v)), mean2);
    const float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(v), mean2);
    s0 = vaddq_f64(s0, vmulq_f64(d0, d0));
    s1 = vaddq_f64(s1, vmulq_f64(d1, d1));
  }
  double sum_sq = vaddvq_f64(vaddq_f64(s0, s1));
  for (size_t e = i; e < n; ++e) sum_sq += (x[e] - mean) * (x[e] - mean);
  const float scale = 1.0f / std::sqrt(float(sum_sq / double(n)) + eps);
  const auto m = float(mean);
  for (i = 0; i + 4 <= n; i += 4) {
    float32x4_t v = vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(m)), scale);
    if (w) v = vmulq_f32(v, vld1q_f32(w + i));
    if (b) v = vaddq_f32(v, vld1q_f32(b + i));
    vst1q_f32(y + i, v);
  }
  for (; i < n; ++i) y[i] = (x[i] - m) * scale * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
}

// (a, b) -> (a c − b s, a s + b c), 4 pairs at a time: vld2q splits pairs (and the table's
// (cos, sin)) into two vectors, vst2q joins them again. The reference's products and sums.
void rope_interleaved(float* head, const float* cs, size_t n_rot) {
  size_t i = 0;
  for (; i + 8 <= n_rot; i += 8) {
    const float32x4x2_t h = vld2q_f32(head + i), t = vld2q_f32(cs + i);
    const float32x4_t a = h.val[0], b = h.val[1], c = t.val[0], s = t.val[1];
    float32x4x2_t r;
    r.val[0] = vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s));
    r.val[1] = vaddq_f32(vmulq_f32(a, s), vmulq_f32(b, c));
    vst2q_f32(head + i, r);
  }
  for (; i < n_rot; i += 2) {
    const float c = cs[i], s = cs[i + 1], a = head[i], b = head[i + 1];
    head[i] = a * c - b * s;
    head[i + 1] = a * s + b * c;
  }
}

// Pairs (i, i + n_rot/2).
void rope_half_split(float* head, const float* cs, size_t n_rot) {
  const size_t half = n_rot / 2;
  size_t i = 0;
  for (; i + 4 <= half; i += 4) {
    const float32x4x2_t t = vld2q_f32(cs + 2 * i);
    const float32x4_t a = vld1q_f32(head + i), b = vld1q_f32(head + i + half);
    const float32x4_t c = t.val[0], s = t.val[1];
    vst1q_f32(head + i, vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s)));
    vst1q_f32(head + i + half, vaddq_f32(vmulq_f32(a, s), vmulq_f32(b, c)));
  }
  for (; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1], a = head[i], b = head[i + half];
    head[i] = a * c - b * s;
    head[i + half] = a * s + b * c;
  }
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

// gelu(v) = v / (1 + e^(−2z)), z = √(2/π) (v + 0.044715 v³): the reference's form, with its
// float operations in its order and exp4 for exp.
float32x4_t gelu4(float32x4_t v) {
  const float32x4_t cube = vmulq_f32(vmulq_f32(vmulq_n_f32(v, 0.044715f), v), v);
  const float32x4_t e = exp4(vmulq_n_f32(vaddq_f32(v, cube), -2.0f * 0.7978845608028654f));
  return vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), e));
}
float gelu1(float v) { return vgetq_lane_f32(gelu4(vdupq_n_f32(v)), 0); }

void gelu(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, gelu4(vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] = gelu1(x[i]);
}

void geglu(const float* g, const float* u, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(gelu4(vld1q_f32(g + i)), vld1q_f32(u + i)));
  for (; i < n; ++i) y[i] = gelu1(g[i]) * u[i];
}

void add(float* y, const float* x, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] += x[i];
}

}  // namespace

void add_neon_ops(OpsSet& ops) {
  ops.rms_norm = rms_norm;
  ops.layer_norm = layer_norm;
  ops.rope_interleaved = rope_interleaved;
  ops.rope_half_split = rope_half_split;
  ops.softmax = softmax;
  ops.swiglu = swiglu;
  ops.gelu = gelu;
  ops.geglu = geglu;
  ops.add = add;
  ops.softcap = softcap;
  add_neon_attention(ops);
}

}  // namespace slm::isa
