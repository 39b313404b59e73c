// Reference kernels for the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1.
// Quantizers reproduce ggml's quantize_row_*_ref byte for byte: the same scale choice, the
// same float expressions and the same float->int conversions (truncation of x + 8.5 etc. for
// the 4/5-bit types, roundf - half away from zero - for Q8_0/Q8_1). Out-of-range floats are
// clamped before converting, which changes nothing for finite input and avoids UB on NaN/Inf.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/ref/blocks.h"
#include "kernels/ref/quant_impl.h"

namespace slm::ref::detail {
namespace {

constexpr size_t kQK = 32;  // every type in this file
constexpr size_t kHalf = kQK / 2;

// The 5-bit values j and j + 16 of a Q5 block: a nibble of qs[j] plus one bit of qh each.
struct Q5Pair {
  int lo, hi;
};
Q5Pair q5_pair(const uint8_t* qs, uint32_t qh, size_t j) {
  return {(qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4),
          (qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4)};
}

// C's (int)(v) for v in [lo, hi], with NaN mapped to lo.
int trunc_clamped(float v, float lo, float hi) {
  return static_cast<int>(std::fmin(std::fmax(v, lo), hi));
}

// The signed value of largest magnitude (the first one on ties), as ggml's Q4_0/Q5_0 pick it.
float signed_absmax(const float* x) {
  float amax = 0.0f;
  float max = 0.0f;
  for (size_t j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (size_t j = 0; j < kQK; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

// Sets the 5th bits of element j (bit j) and j+16 (bit j+16) of a Q5 qh word.
uint32_t high_bits(uint32_t qh, size_t j, int q0, int q1) {
  qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
  qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kHalf);
  return qh;
}

// Signed 8-bit quantization shared by Q8_0 and Q8_1: d = amax/127, q = roundf(x/d).
float quantize_int8(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (size_t j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (size_t j = 0; j < kQK; ++j) {
    q[j] = static_cast<int8_t>(std::round(std::fmin(std::fmax(x[j] * id, -127.0f), 127.0f)));
  }
  return d;
}

}  // namespace

// ---- dequantize: x = (q - offset) * d [+ m] ----

void dequantize_q4_0(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (size_t j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
      dst[j + kHalf] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    const float m = fp16_to_fp32(b[i].m);
    for (size_t j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>(b[i].qs[j] & 0xF) * d + m;
      dst[j + kHalf] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    const uint32_t qh = load_u32_le(b[i].qh);
    for (size_t j = 0; j < kHalf; ++j) {
      const auto [q0, q1] = q5_pair(b[i].qs, qh, j);
      dst[j] = static_cast<float>(q0 - 16) * d;
      dst[j + kHalf] = static_cast<float>(q1 - 16) * d;
    }
  }
}

void dequantize_q5_1(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    const float m = fp16_to_fp32(b[i].m);
    const uint32_t qh = load_u32_le(b[i].qh);
    for (size_t j = 0; j < kHalf; ++j) {
      const auto [q0, q1] = q5_pair(b[i].qs, qh, j);
      dst[j] = static_cast<float>(q0) * d + m;
      dst[j + kHalf] = static_cast<float>(q1) * d + m;
    }
  }
}

void dequantize_q8_0(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (size_t j = 0; j < kQK; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequantize_q8_1(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (size_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (size_t j = 0; j < kQK; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

// ---- quantize (ggml quantize_row_*_ref) ----

// d = max / -8 with max the signed absmax, so max itself maps to q = 0 (value -8 * d).
void quantize_q4_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = signed_absmax(src) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (size_t j = 0; j < kHalf; ++j) {
      const int q0 = trunc_clamped(src[j] * id + 8.5f, 0.0f, 15.0f);
      const int q1 = trunc_clamped(src[j + kHalf] * id + 8.5f, 0.0f, 15.0f);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// d = (max - min) / 15, m = min, q = trunc((x - min) / d + 0.5).
void quantize_q4_1(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    float min = 0.0f;
    float max = 0.0f;
    min_max(src, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(min);
    for (size_t j = 0; j < kHalf; ++j) {
      const int q0 = trunc_clamped((src[j] - min) * id + 0.5f, 0.0f, 15.0f);
      const int q1 = trunc_clamped((src[j + kHalf] - min) * id + 0.5f, 0.0f, 15.0f);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// d = max / -16 (signed absmax), q = trunc(x / d + 16.5) clamped to 31.
void quantize_q5_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ5_0*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = signed_absmax(src) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      const int q0 = trunc_clamped(src[j] * id + 16.5f, 0.0f, 31.0f);
      const int q1 = trunc_clamped(src[j + kHalf] * id + 16.5f, 0.0f, 31.0f);
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh = high_bits(qh, j, q0, q1);
    }
    std::memcpy(b[i].qh, &qh, sizeof qh);
  }
}

// d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5).
void quantize_q5_1(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ5_1*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    float min = 0.0f;
    float max = 0.0f;
    min_max(src, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      // ggml converts with (uint8_t) and no clamp; x - min <= max - min keeps q <= 31.
      const int q0 = trunc_clamped((src[j] - min) * id + 0.5f, 0.0f, 31.0f);
      const int q1 = trunc_clamped((src[j + kHalf] - min) * id + 0.5f, 0.0f, 31.0f);
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh = high_bits(qh, j, q0, q1);
    }
    std::memcpy(b[i].qh, &qh, sizeof qh);
  }
}

void quantize_q8_0(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    b[i].d = fp32_to_fp16(quantize_int8(src, b[i].qs));
  }
}

// As Q8_0, plus s = fp16(d * sum(q)) (d unrounded, as ggml).
void quantize_q8_1(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (size_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = quantize_int8(src, b[i].qs);
    int sum = 0;
    for (size_t j = 0; j < kQK; ++j) sum += b[i].qs[j];
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

// ---- dot products: int32 sum per block, scales once per block, float across blocks ----

// sum_b d_w d_x * sum_j (q_w - 8) q_x
float dot_q4_0_q8_0(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ4_0*>(w);
  const auto* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    int32_t sumi = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      sumi += ((wb[i].qs[j] & 0xF) - 8) * xb[i].qs[j];
      sumi += ((wb[i].qs[j] >> 4) - 8) * xb[i].qs[j + kHalf];
    }
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d));
  }
  return sum;
}

// sum_b [ d_w d_x * sum_j q_w q_x + m_w * s_x ]  (s_x = d_x * sum_j q_x, stored as fp16)
float dot_q4_1_q8_1(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ4_1*>(w);
  const auto* xb = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    int32_t sumi = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      sumi += (wb[i].qs[j] & 0xF) * xb[i].qs[j];
      sumi += (wb[i].qs[j] >> 4) * xb[i].qs[j + kHalf];
    }
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d)) +
           fp16_to_fp32(wb[i].m) * fp16_to_fp32(xb[i].s);
  }
  return sum;
}

// sum_b d_w d_x * sum_j (q_w - 16) q_x
float dot_q5_0_q8_0(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ5_0*>(w);
  const auto* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32_le(wb[i].qh);
    int32_t sumi = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      const auto [q0, q1] = q5_pair(wb[i].qs, qh, j);
      sumi += (q0 - 16) * xb[i].qs[j] + (q1 - 16) * xb[i].qs[j + kHalf];
    }
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d));
  }
  return sum;
}

// sum_b [ d_w d_x * sum_j q_w q_x + m_w * s_x ]
float dot_q5_1_q8_1(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ5_1*>(w);
  const auto* xb = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32_le(wb[i].qh);
    int32_t sumi = 0;
    for (size_t j = 0; j < kHalf; ++j) {
      const auto [q0, q1] = q5_pair(wb[i].qs, qh, j);
      sumi += q0 * xb[i].qs[j] + q1 * xb[i].qs[j + kHalf];
    }
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d)) +
           fp16_to_fp32(wb[i].m) * fp16_to_fp32(xb[i].s);
  }
  return sum;
}

// sum_b d_w d_x * sum_j q_w q_x
float dot_q8_0_q8_0(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ8_0*>(w);
  const auto* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    int32_t sumi = 0;
    for (size_t j = 0; j < kQK; ++j) sumi += wb[i].qs[j] * xb[i].qs[j];
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d));
  }
  return sum;
}

float dot_q8_1_q8_1(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ8_1*>(w);
  const auto* xb = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK; ++i) {
    int32_t sumi = 0;
    for (size_t j = 0; j < kQK; ++j) sumi += wb[i].qs[j] * xb[i].qs[j];
    sum += static_cast<float>(sumi) * (fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d));
  }
  return sum;
}

}  // namespace slm::ref::detail
