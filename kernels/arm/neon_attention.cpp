// Baseline ASIMD attention over a Q8_0 KV cache (formula in kernels/ref/ops.h). Two passes like
// the reference: the scores by 4-lane dots of q with the dequantized keys, the reference's own
// soft-cap and softmax over them (in `scores`), then Σ_j p_j · v_j in 4-lane vectors. The
// dequantized elements d·q are exact, so only the order of the dots' float additions (and fused
// multiply-adds) differs from the reference: agreement to float rounding.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/ref/quant.h"

namespace slm::isa {
namespace {

// Elements [d, d + 8) of a Q8_0 head row (d a multiple of 8, head_dim of 32): quants of block
// d / 32 times its scale.
struct F32x8 {
  float32x4_t lo, hi;
};
F32x8 load_q8_0(const uint8_t* row, size_t d) {
  const auto* block = reinterpret_cast<const BlockQ8_0*>(row) + d / kQK8_0;
  const int16x8_t q = vmovl_s8(vld1_s8(block->qs + d % kQK8_0));
  const float s = fp16_to_fp32(block->d);
  return {vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), s),
          vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q)), s)};
}

void attention_q8_0(const float* q, const ref::KvRows& k, const ref::KvRows& v, size_t n_keys,
                    size_t D, float scale, float cap, float* scores, float* out) {
  for (size_t j = 0; j < n_keys; ++j) {
    const uint8_t* row = k.row(j);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    for (size_t d = 0; d < D; d += 8) {
      const F32x8 kd = load_q8_0(row, d);
      a0 = vfmaq_f32(a0, vld1q_f32(q + d), kd.lo);
      a1 = vfmaq_f32(a1, vld1q_f32(q + d + 4), kd.hi);
    }
    scores[j] = vaddvq_f32(vaddq_f32(a0, a1)) * scale;
  }
  if (cap > 0) ref::softcap(scores, cap, n_keys);
  ref::softmax(scores, n_keys);
  for (size_t d = 0; d < D; d += 4) vst1q_f32(out + d, vdupq_n_f32(0.0f));
  for (size_t j = 0; j < n_keys; ++j) {
    const uint8_t* row = v.row(j);
    const float32x4_t p = vdupq_n_f32(scores[j]);
    for (size_t d = 0; d < D; d += 8) {
      const F32x8 vd = load_q8_0(row, d);
      vst1q_f32(out + d, vfmaq_f32(vld1q_f32(out + d), p, vd.lo));
      vst1q_f32(out + d + 4, vfmaq_f32(vld1q_f32(out + d + 4), p, vd.hi));
    }
  }
}

}  // namespace

void add_neon_ops(OpsSet& ops) { ops.attention_q8_0 = attention_q8_0; }

}  // namespace slm::isa
