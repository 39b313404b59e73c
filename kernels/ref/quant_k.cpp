// Reference kernels for the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: 256-element super-blocks
// with per-group scales) and for Q8_K, the activation type they are dotted with.
//
// Each weight type has one decoder that unpacks a super-block's quants into q[256] in element
// order (the only place that knows the bit layout); dequantize and vec_dot both use it.
// Dequantize computes (d * scale) * q - (dmin * min) in that order, like ggml, so the floats
// match ggml's dequantize_row_* exactly. Dots follow ggml's scalar ggml_vec_dot_qX_K_q8_K: integer
// sums per group times the integer group scale, accumulated in int32 over the super-block; the
// min terms use Q8_K's bsums; the float super-block scales are applied once per super-block.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/ref/blocks.h"
#include "kernels/ref/quant_impl.h"

namespace slm::ref::detail {

int nearest_int(float x) {
  // Adding 1.5 * 2^23 leaves round_half_even(x) + 2^22 in the low 23 mantissa bits.
  const float shifted = x + 12582912.0f;
  return static_cast<int>(std::bit_cast<uint32_t>(shifted) & 0x007fffffu) - 0x00400000;
}

namespace {

constexpr size_t kGroups16 = kQK_K / 16;
constexpr size_t kGroups32 = kQK_K / 32;

// Q2_K: element 128h + 32k + l is bits 2k..2k+1 of qs[32h + l].
void decode_q2_k(const BlockQ2_K& b, int8_t* q) {
  for (size_t h = 0; h < 2; ++h) {
    for (size_t k = 0; k < 4; ++k) {
      for (size_t l = 0; l < 32; ++l) {
        q[128 * h + 32 * k + l] = static_cast<int8_t>((b.qs[32 * h + l] >> (2 * k)) & 3);
      }
    }
  }
}

// Q3_K: the Q2_K low bits minus 4 unless bit (e / 32) of hmask[e % 32] is set.
void decode_q3_k(const BlockQ3_K& b, int8_t* q) {
  for (size_t h = 0; h < 2; ++h) {
    for (size_t k = 0; k < 4; ++k) {
      for (size_t l = 0; l < 32; ++l) {
        const int low = (b.qs[32 * h + l] >> (2 * k)) & 3;
        const bool high = (b.hmask[l] >> (4 * h + k)) & 1;
        q[128 * h + 32 * k + l] = static_cast<int8_t>(low - (high ? 0 : 4));
      }
    }
  }
}

// Q4_K / Q5_K: qs[32h + l] low nibble = element 64h + l, high nibble = element 64h + 32 + l;
// Q5_K adds bit 2h / 2h+1 of qh[l] as bit 4.
void decode_q4_k(const uint8_t* qs, const uint8_t* qh, int8_t* q) {
  for (size_t h = 0; h < 4; ++h) {
    for (size_t l = 0; l < 32; ++l) {
      int lo = qs[32 * h + l] & 0xF;
      int hi = qs[32 * h + l] >> 4;
      if (qh != nullptr) {
        lo |= ((qh[l] >> (2 * h)) & 1) << 4;
        hi |= ((qh[l] >> (2 * h + 1)) & 1) << 4;
      }
      q[64 * h + l] = static_cast<int8_t>(lo);
      q[64 * h + 32 + l] = static_cast<int8_t>(hi);
    }
  }
}

// Q6_K: element 128h + 32k + l: low nibble from ql[64h + 32(k&1) + l] (nibble k>>1), high 2 bits
// from bits 2k..2k+1 of qh[32h + l]; minus 32.
void decode_q6_k(const BlockQ6_K& b, int8_t* q) {
  for (size_t h = 0; h < 2; ++h) {
    for (size_t k = 0; k < 4; ++k) {
      for (size_t l = 0; l < 32; ++l) {
        const int low = (b.ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
        const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
        q[128 * h + 32 * k + l] = static_cast<int8_t>((low | (high << 4)) - 32);
      }
    }
  }
}

void k4_scales(const uint8_t* packed, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < static_cast<int>(kGroups32); ++j) k4_scale_min(j, packed, &sc[j], &mn[j]);
}

int32_t group_dot(const int8_t* a, const int8_t* b, size_t len) {
  int32_t s = 0;
  for (size_t l = 0; l < len; ++l) s += a[l] * b[l];
  return s;
}

}  // namespace

// ---- dequantize ----

void dequantize_q2_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  int8_t q[kQK_K];
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    decode_q2_k(b[i], q);
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    for (size_t g = 0; g < kGroups16; ++g) {
      const float dl = d * static_cast<float>(b[i].scales[g] & 0xF);
      const float ml = dmin * static_cast<float>(b[i].scales[g] >> 4);
      for (size_t l = 0; l < 16; ++l) dst[16 * g + l] = dl * q[16 * g + l] - ml;
    }
  }
}

void dequantize_q3_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  int8_t q[kQK_K];
  int8_t sc[kGroups16];
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    decode_q3_k(b[i], q);
    q3k_unpack_scales(b[i].scales, sc);
    const float d = fp16_to_fp32(b[i].d);
    for (size_t g = 0; g < kGroups16; ++g) {
      const float dl = d * static_cast<float>(sc[g]);
      for (size_t l = 0; l < 16; ++l) dst[16 * g + l] = dl * q[16 * g + l];
    }
  }
}

namespace {
void dequantize_q45_k(const uint16_t d16, const uint16_t dmin16, const uint8_t* packed,
                      const int8_t* q, float* dst) {
  uint8_t sc[kGroups32];
  uint8_t mn[kGroups32];
  k4_scales(packed, sc, mn);
  const float d = fp16_to_fp32(d16);
  const float dmin = fp16_to_fp32(dmin16);
  for (size_t g = 0; g < kGroups32; ++g) {
    const float dl = d * static_cast<float>(sc[g]);
    const float ml = dmin * static_cast<float>(mn[g]);
    for (size_t l = 0; l < 32; ++l) dst[32 * g + l] = dl * q[32 * g + l] - ml;
  }
}
}  // namespace

void dequantize_q4_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  int8_t q[kQK_K];
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    decode_q4_k(b[i].qs, nullptr, q);
    dequantize_q45_k(b[i].d, b[i].dmin, b[i].scales, q, dst);
  }
}

void dequantize_q5_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  int8_t q[kQK_K];
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    decode_q4_k(b[i].qs, b[i].qh, q);
    dequantize_q45_k(b[i].d, b[i].dmin, b[i].scales, q, dst);
  }
}

void dequantize_q6_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  int8_t q[kQK_K];
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    decode_q6_k(b[i], q);
    const float d = fp16_to_fp32(b[i].d);
    for (size_t g = 0; g < kGroups16; ++g) {
      const float dl = d * static_cast<float>(b[i].scales[g]);
      for (size_t l = 0; l < 16; ++l) dst[16 * g + l] = dl * q[16 * g + l];
    }
  }
}

void dequantize_q8_k(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (size_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    for (size_t j = 0; j < kQK_K; ++j) dst[j] = b[i].d * b[i].qs[j];
  }
}

// ---- Q8_K activation quantizer (ggml quantize_row_q8_K_ref) ----
// With max the signed value of largest |x|: iscale = -127/max, q = min(127, nearest_int(iscale x)),
// d = 1/iscale, bsums = sums of 16 consecutive q. (The sign flip makes max itself -127.)
void quantize_q8_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    float amax = 0.0f;
    float max = 0.0f;
    for (size_t j = 0; j < kQK_K; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    if (amax == 0.0f) {  // ggml leaves bsums unwritten here; zero is their true value
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    const float iscale = -127.0f / max;
    for (size_t j = 0; j < kQK_K; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::clamp(nearest_int(iscale * src[j]), -128, 127));
    }
    for (size_t g = 0; g < kGroups16; ++g) {
      int sum = 0;
      for (size_t l = 0; l < 16; ++l) sum += b[i].qs[16 * g + l];
      b[i].bsums[g] = static_cast<int16_t>(sum);
    }
    b[i].d = 1.0f / iscale;
  }
}

// ---- dot products with Q8_K ----

// sum_b [ d_x d_w * sum_g (sc_g & 15) * sum q_w q_x  -  d_x dmin_w * sum_g (sc_g >> 4) bsum_g ]
float dot_q2_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ2_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQK_K];
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    decode_q2_k(wb[i], q);
    int32_t isum = 0;
    int32_t msum = 0;
    for (size_t g = 0; g < kGroups16; ++g) {
      isum += (wb[i].scales[g] & 0xF) * group_dot(q + 16 * g, xb[i].qs + 16 * g, 16);
      msum += (wb[i].scales[g] >> 4) * xb[i].bsums[g];
    }
    const float dall = xb[i].d * fp16_to_fp32(wb[i].d);
    const float dmin = xb[i].d * fp16_to_fp32(wb[i].dmin);
    sum += dall * static_cast<float>(isum) - dmin * static_cast<float>(msum);
  }
  return sum;
}

// sum_b d_w d_x * sum_g s_g * sum q_w q_x   (s_g signed 6-bit, q_w in -4..3)
float dot_q3_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ3_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQK_K];
  int8_t sc[kGroups16];
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    decode_q3_k(wb[i], q);
    q3k_unpack_scales(wb[i].scales, sc);
    int32_t isum = 0;
    for (size_t g = 0; g < kGroups16; ++g) {
      isum += sc[g] * group_dot(q + 16 * g, xb[i].qs + 16 * g, 16);
    }
    sum += (fp16_to_fp32(wb[i].d) * xb[i].d) * static_cast<float>(isum);
  }
  return sum;
}

namespace {
// Q4_K and Q5_K: sum_b [ d_w d_x * sum_g sc_g sum q_w q_x - dmin_w d_x * sum_g m_g (bsum_2g +
// bsum_2g+1) ]
float dot_q45_k(uint16_t d16, uint16_t dmin16, const uint8_t* packed, const int8_t* q,
                const BlockQ8_K& xb) {
  uint8_t sc[kGroups32];
  uint8_t mn[kGroups32];
  k4_scales(packed, sc, mn);
  int32_t isum = 0;
  int32_t msum = 0;
  for (size_t g = 0; g < kGroups32; ++g) {
    isum += sc[g] * group_dot(q + 32 * g, xb.qs + 32 * g, 32);
    msum += mn[g] * (xb.bsums[2 * g] + xb.bsums[2 * g + 1]);
  }
  const float d = fp16_to_fp32(d16) * xb.d;
  const float dmin = fp16_to_fp32(dmin16) * xb.d;
  return d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
}
}  // namespace

float dot_q4_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ4_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQK_K];
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    decode_q4_k(wb[i].qs, nullptr, q);
    sum += dot_q45_k(wb[i].d, wb[i].dmin, wb[i].scales, q, xb[i]);
  }
  return sum;
}

float dot_q5_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ5_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQK_K];
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    decode_q4_k(wb[i].qs, wb[i].qh, q);
    sum += dot_q45_k(wb[i].d, wb[i].dmin, wb[i].scales, q, xb[i]);
  }
  return sum;
}

// sum_b d_w d_x * sum_g scales_g * sum q_w q_x   (q_w in -32..31)
float dot_q6_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ6_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQK_K];
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    decode_q6_k(wb[i], q);
    int32_t isum = 0;
    for (size_t g = 0; g < kGroups16; ++g) {
      isum += wb[i].scales[g] * group_dot(q + 16 * g, xb[i].qs + 16 * g, 16);
    }
    sum += (fp16_to_fp32(wb[i].d) * xb[i].d) * static_cast<float>(isum);
  }
  return sum;
}

float dot_q8_k_q8_k(const void* w, const void* x, size_t n) {
  const auto* wb = static_cast<const BlockQ8_K*>(w);
  const auto* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / kQK_K; ++i) {
    sum += (wb[i].d * xb[i].d) * static_cast<float>(group_dot(wb[i].qs, xb[i].qs, kQK_K));
  }
  return sum;
}

}  // namespace slm::ref::detail
