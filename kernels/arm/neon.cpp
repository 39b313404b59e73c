// Baseline aarch64 ASIMD kernels (every aarch64 CPU has them): quantized dots through vmull_s8
// (int8 x int8 -> int16, exact even for -128 * -128) and pairwise widening adds into int32, float
// dots in double (BF16 weights with F32 activations), the K-quant dots (kernels/arm/neon_kquant.h),
// and the activation quantizers (Q8_0, Q8_1, Q8_K, F16).
// kernels/arm/neon_dotprod.cpp overrides the quantized dots with sdot where HWCAP reports it
// (dispatch.cpp asks cpu_has_neon_dotprod()). Compiled with -ffp-contract=off: aarch64 compilers
// fuse a * b + c into fmla by default, which would change the block terms and the quantizers'
// bytes.
#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/arm/neon_blocks.h"
#include "kernels/arm/neon_kquant.h"
#include "kernels/isa_kernels.h"
#include "kernels/ref/quant.h"

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // Linux's bit for the dot product instructions (sdot/udot)
#endif
#endif

namespace slm::isa {

bool cpu_has_neon_dotprod() {
#if defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

namespace {

// 4 int32 lanes summing to w . x over 32 int8 pairs.
int32x4_t dot_mull(I8x32 w, I8x32 x) {
  int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w.lo), vget_low_s8(x.lo)));
  s = vpadalq_s16(s, vmull_high_s8(w.lo, x.lo));
  s = vpadalq_s16(s, vmull_s8(vget_low_s8(w.hi), vget_low_s8(x.hi)));
  return vpadalq_s16(s, vmull_high_s8(w.hi, x.hi));
}

// 4 int32 lanes summing to w . x over 16 int8 pairs (the K-quant groups).
int32x4_t dot16_mull(int8x16_t w, int8x16_t x) {
  return vpadalq_s16(vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x))), vmull_high_s8(w, x));
}

// Float dots: products exact in double (float x float) or in float (half x half), summed in
// double like the reference, in 4 x 2 lanes.
float dot_f32(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const float*>(w_row);
  const auto* b = static_cast<const float*>(x_row);
  float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0)};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < 2; ++k) {
      const float32x4_t va = vld1q_f32(a + i + 4 * k);
      const float32x4_t vb = vld1q_f32(b + i + 4 * k);
      acc[2 * k] = vaddq_f64(
          acc[2 * k], vmulq_f64(vcvt_f64_f32(vget_low_f32(va)), vcvt_f64_f32(vget_low_f32(vb))));
      acc[2 * k + 1] =
          vaddq_f64(acc[2 * k + 1], vmulq_f64(vcvt_high_f64_f32(va), vcvt_high_f64_f32(vb)));
    }
  }
  double sum = vaddvq_f64(vaddq_f64(vaddq_f64(acc[0], acc[1]), vaddq_f64(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

// BF16 weights dot F32 activations, like dot_f32: a BF16 is the top half of an F32, so each
// widens exactly with a 16-bit left shift.
float dot_bf16_f32(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const uint16_t*>(w_row);
  const auto* b = static_cast<const float*>(x_row);
  float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0)};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(a + i);
    const float32x4_t wa[2] = {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)),
                               vreinterpretq_f32_u32(vshll_high_n_u16(h, 16))};
    for (size_t k = 0; k < 2; ++k) {
      const float32x4_t vb = vld1q_f32(b + i + 4 * k);
      acc[2 * k] = vaddq_f64(acc[2 * k], vmulq_f64(vcvt_f64_f32(vget_low_f32(wa[k])),
                                                   vcvt_f64_f32(vget_low_f32(vb))));
      acc[2 * k + 1] =
          vaddq_f64(acc[2 * k + 1], vmulq_f64(vcvt_high_f64_f32(wa[k]), vcvt_high_f64_f32(vb)));
    }
  }
  double sum = vaddvq_f64(vaddq_f64(vaddq_f64(acc[0], acc[1]), vaddq_f64(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(a[i])) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

float dot_f16(const void* w_row, const void* x_row, size_t n) {
  const auto* a = static_cast<const uint16_t*>(w_row);
  const auto* b = static_cast<const uint16_t*>(x_row);
  float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0)};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t ha = vreinterpretq_f16_u16(vld1q_u16(a + i));
    const float16x8_t hb = vreinterpretq_f16_u16(vld1q_u16(b + i));
    // Exact: 11-bit x 11-bit significands, exponents well inside float's range.
    const float32x4_t p0 =
        vmulq_f32(vcvt_f32_f16(vget_low_f16(ha)), vcvt_f32_f16(vget_low_f16(hb)));
    const float32x4_t p1 = vmulq_f32(vcvt_high_f32_f16(ha), vcvt_high_f32_f16(hb));
    acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(p0)));
    acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(p0));
    acc[2] = vaddq_f64(acc[2], vcvt_f64_f32(vget_low_f32(p1)));
    acc[3] = vaddq_f64(acc[3], vcvt_high_f64_f32(p1));
  }
  double sum = vaddvq_f64(vaddq_f64(vaddq_f64(acc[0], acc[1]), vaddq_f64(acc[2], acc[3])));
  for (; i < n; ++i) {
    sum += static_cast<double>(fp16_to_fp32(a[i])) * static_cast<double>(fp16_to_fp32(b[i]));
  }
  return static_cast<float>(sum);
}

// F32 -> F16 with fcvtn: round to nearest even (the FPCR default, which the reference matches),
// overflow to Inf, subnormal halves produced exactly.
void quantize_f16(const float* src, void* dst, size_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t v =
        vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)), vld1q_f32(src + i + 4));
    vst1q_u16(h + i, vreinterpretq_u16_f16(v));
  }
  for (; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}

// std::max(m, a) per lane, as the reference takes it: m unless m < a, so a NaN never enters.
float32x4_t max_skip_nan(float32x4_t m, float32x4_t a) { return vbslq_f32(vcltq_f32(m, a), a, m); }

// Q8_0 (ggml quantize_row_q8_0_ref): d = amax / 127, q = roundf(clamp(x / d, -127, 127)). fmaxnm
// sends a NaN product to -127 as fmax does; frinta rounds half away from zero like roundf.
// One block of 32: qs = the quants, returns d (unrounded). Shared by Q8_0 and Q8_1.
float quantize_int8_block(const float* src, int8_t* qs) {
  float32x4_t v[8];
  float32x4_t amax = vdupq_n_f32(0.0f);
  for (size_t k = 0; k < 8; ++k) {
    v[k] = vld1q_f32(src + 4 * k);
    amax = max_skip_nan(amax, vabsq_f32(v[k]));
  }
  const float d = vmaxvq_f32(amax) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int16x8_t q16[4];
  for (size_t k = 0; k < 4; ++k) {
    int32x4_t q32[2];
    for (size_t h = 0; h < 2; ++h) {
      float32x4_t s = vmaxnmq_f32(vmulq_f32(v[2 * k + h], vdupq_n_f32(id)), vdupq_n_f32(-127.0f));
      s = vminnmq_f32(s, vdupq_n_f32(127.0f));
      q32[h] = vcvtq_s32_f32(vrndaq_f32(s));
    }
    q16[k] = vcombine_s16(vmovn_s32(q32[0]), vmovn_s32(q32[1]));
  }
  vst1q_s8(qs, vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1])));
  vst1q_s8(qs + 16, vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3])));
  return d;
}

void quantize_q8_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (size_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    b[i].d = fp32_to_fp16(quantize_int8_block(src, b[i].qs));
  }
}

// Q8_1 (the activations of Q4_1 / Q5_1): Q8_0's quants plus s = fp16(d * sum(q)), d unrounded.
void quantize_q8_1(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (size_t i = 0; i < n / kQK8_1; ++i, src += kQK8_1) {
    const float d = quantize_int8_block(src, b[i].qs);
    const int sum = vaddlvq_s8(vld1q_s8(b[i].qs)) + vaddlvq_s8(vld1q_s8(b[i].qs + 16));
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

// Q8_K (ggml quantize_row_q8_K_ref): max = the signed value of largest |x| (the first on ties),
// q = clamp(nearest_int(-127 / max * x), -128, 127), bsums = sums of 16, d = 1 / iscale. fcvtns
// rounds half to even like nearest_int, and turns NaN into 0 as nearest_int does; the saturating
// narrows are the clamp.
void quantize_q8_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    float32x4_t vmax = vdupq_n_f32(0.0f);
    for (size_t k = 0; k < kQK_K; k += 4) vmax = max_skip_nan(vmax, vabsq_f32(vld1q_f32(src + k)));
    const float amax = vmaxvq_f32(vmax);
    if (amax == 0.0f) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    float max = amax;
    for (size_t k = 0; k < kQK_K; ++k) {
      if (std::fabs(src[k]) == amax) {
        max = src[k];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const float32x4_t vs = vdupq_n_f32(iscale);
    for (size_t g = 0; g < kQK_K / 16; ++g) {
      int16x8_t q16[2];
      for (size_t h = 0; h < 2; ++h) {
        const float* p = src + 16 * g + 8 * h;
        const int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(p), vs));
        const int32x4_t c = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(p + 4), vs));
        q16[h] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(c));
      }
      const int8x16_t q = vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1]));
      vst1q_s8(b[i].qs + 16 * g, q);
      b[i].bsums[g] = vaddlvq_s8(q);
    }
    b[i].d = 1.0f / iscale;
  }
}

// Q8_0 activations packed for neon_blocks.h's tile_q8_0 (KernelSet::pack[Q8_0]; the layout is
// kernels/dispatch.h's): in a group the 8 blocks' quant bytes stay in block order, as the tiles
// load them; the scales are widened to float once per matmul instead of once per row and token.
void pack_q8_0(const void* x_row, size_t n, void* dst) {
  const auto* x = static_cast<const BlockQ8_0*>(x_row);
  auto* out = static_cast<uint8_t*>(dst);
  const size_t nb = n / kQK8_0;
  const auto sum_of = [](const BlockQ8_0& b) {
    return int32_t(vaddlvq_s8(vld1q_s8(b.qs)) + vaddlvq_s8(vld1q_s8(b.qs + 16)));
  };
  size_t i = 0;
  for (; i + kPackGroup <= nb; i += kPackGroup, out += kPackedGroupBytes) {
    for (size_t j = 0; j < kPackGroup; ++j) {
      const BlockQ8_0& b = x[i + j];
      std::memcpy(out + j * kQK8_0, b.qs, kQK8_0);
      const float d = fp16_to_fp32(b.d);
      const int32_t sum = sum_of(b);
      std::memcpy(out + kPackedScalesAt + j * sizeof(float), &d, sizeof(d));
      std::memcpy(out + kPackedSumsAt + j * sizeof(int32_t), &sum, sizeof(sum));
    }
  }
  std::memcpy(out, &x[i], (nb - i) * sizeof(BlockQ8_0));
  out += (nb - i) * sizeof(BlockQ8_0);
  for (; i < nb; ++i, out += sizeof(int32_t)) {
    const int32_t sum = sum_of(x[i]);
    std::memcpy(out, &sum, sizeof(sum));
  }
}

}  // namespace

void add_neon_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kF32)] = dot_f32;
  k.vec_dot[static_cast<size_t>(DType::kF16)] = dot_f16;
  k.vec_dot[static_cast<size_t>(DType::kBF16)] = dot_bf16_f32;
  k.vec_dot[static_cast<size_t>(DType::kQ8_0)] = dot_blocks<PairQ8_0, dot_mull>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_0)] = dot_blocks<PairQ4_0, dot_mull>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_1)] = dot_blocks<PairQ4_1, dot_mull>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_0)] = dot_blocks<PairQ5_0, dot_mull>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_1)] = dot_blocks<PairQ5_1, dot_mull>;
  add_neon_kquant_kernels<dot16_mull>(k);
  k.pack[static_cast<size_t>(DType::kQ8_0)] = pack_q8_0;
  k.gemm_tile[static_cast<size_t>(DType::kQ8_0)] = tile_q8_0<PairQ8_0, dot_mull>;
  k.gemm_tile[static_cast<size_t>(DType::kQ4_0)] = tile_q8_0<PairQ4_0, dot_mull>;
  k.gemm_tile[static_cast<size_t>(DType::kQ5_0)] = tile_q8_0<PairQ5_0, dot_mull>;
  k.quantize[static_cast<size_t>(DType::kF16)] = quantize_f16;
  k.quantize[static_cast<size_t>(DType::kQ8_0)] = quantize_q8_0;
  k.quantize[static_cast<size_t>(DType::kQ8_1)] = quantize_q8_1;
  k.quantize[static_cast<size_t>(DType::kQ8_K)] = quantize_q8_k;
  add_neon_ops(k.ops);
}

}  // namespace slm::isa
