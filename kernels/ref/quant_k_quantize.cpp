// Reference quantizers for Q2_K..Q6_K: ggml's quantize_row_qX_K_ref (no importance matrix), the
// algorithm llama-quantize uses without --imatrix. To be byte-identical the float expressions
// keep ggml's order of operations and its nearest_int rounding; FMA contraction is off.
//
// Shape of all five: choose a scale (and for Q2/Q4/Q5_K a min) per group by a small search
// (fit_scale_min / fit_scale_rmse / fit_scale_q3), quantize the group scales against the
// super-block scale d (fp16), then requantize the elements with the scales as stored.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/ref/blocks.h"
#include "kernels/ref/quant_impl.h"

namespace slm::ref::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS: a group this small is all zero

// ggml make_qkx2_quants: fit x ~ scale * L + min (L in 0..nmax, min <= 0) minimising the
// weighted error (|.| when use_mad, else squared), trying nstep+1 candidate scales around
// nmax / (max - min). Returns scale; *neg_min = -min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += w[i] * diff;
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      aux[i] = static_cast<uint8_t>(l);
      const auto lf = static_cast<float>(l);
      sum_l += w[i] * lf;
      sum_l2 += w[i] * lf * lf;
      sum_xl += w[i] * lf * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * aux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += w[i] * diff;
      }
      if (cur_error < best_error) {
        std::copy(aux, aux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Signed absmax: the value with the largest |x| (first on ties), and that |x|.
float signed_absmax(int n, const float* x, float* amax_out) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

// ggml make_qx_quants with rmse_type 1 and no importance: symmetric L in -nmax..nmax-1 (stored
// + nmax), weights x^2, least-squares scale, trying 18 scales around -nmax / max.
float fit_scale_rmse(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0;
  const float max = signed_absmax(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const auto quant = [&](float iscale, float xi) {
    return std::clamp(nearest_int(iscale * xi), -nmax, nmax - 1);
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = quant(iscale, x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const auto l = static_cast<float>(quant(iscale, x[i]));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + quant(iscale, x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ggml make_q3_quants with do_rmse: like fit_scale_rmse but refines each L[i] in turn (up to 5
// passes) while the weighted fit improves. L in -nmax..nmax-1, stored + nmax.
float fit_scale_q3(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0;
  const float max = signed_absmax(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Packs 2-bit values: element 128h + 32k + l into bits 2k of qs[32h + l].
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* g = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(g[0] | (g[32] << 2) | (g[64] << 4) | (g[96] << 6));
    }
  }
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per 32-group asymmetric fits with weights
// rms(x) + |x|, scales/mins quantized to 6 bits against d = max_scale/63, dmin = max_min/63,
// then the elements requantized with the stored scales. Fills L (0..nmax) and the header.
void quantize_k45(const float* x, int nmax, float rmin, float rdelta, int nstep, uint8_t* L,
                  uint16_t* d_out, uint16_t* dmin_out, uint8_t* packed) {
  float scales[8];
  float mins[8];
  float weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xg = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xg[l] * xg[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xg[l]);
    scales[j] =
        fit_scale_min(32, nmax, xg, weights, L + 32 * j, &mins[j], rmin, rdelta, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8];
  uint8_t lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  pack_k4_scales(ls, lm, packed);
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc = 0, m = 0;
    k4_scale_min(j, packed, &sc, &m);
    const float d = fp16_to_fp32(*d_out) * sc;
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(*dmin_out) * m;
    for (int i = 0; i < 32; ++i) {
      L[32 * j + i] =
          static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
  }
}

}  // namespace

void quantize_q2_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    uint8_t L[kQK_K];
    float weights[16], scales[16], mins[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(src[16 * j + l]);
      scales[j] =
          fit_scale_min(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float q4scale = 15.f;
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j)
        b[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      b[i].d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::fill(b[i].scales, b[i].scales + 16, uint8_t{0});
      b[i].d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) {
        b[i].scales[j] =
            static_cast<uint8_t>(b[i].scales[j] | (nearest_int(iscale * mins[j]) << 4));
      }
      b[i].dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      b[i].dmin = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(b[i].d) * (b[i].scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = fp16_to_fp32(b[i].dmin) * (b[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] =
            static_cast<uint8_t>(std::clamp(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
      }
    }
    pack_2bit(L, b[i].qs);
  }
}

void quantize_q3_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_scale_q3(16, 4, src + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(b[i].scales, 0, sizeof b[i].scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l =
            std::clamp(static_cast<int>(static_cast<int8_t>(nearest_int(iscale * scales[j]))), -32,
                       31) +
            32;
        if (j < 8) {
          b[i].scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          b[i].scales[j - 8] = static_cast<uint8_t>(b[i].scales[j - 8] | ((l & 0xF) << 4));
        }
        b[i].scales[8 + j % 4] =
            static_cast<uint8_t>(b[i].scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
      }
      b[i].d = fp32_to_fp16(1 / iscale);
    } else {
      b[i].d = fp32_to_fp16(0.f);
    }
    int8_t sc[16];
    q3k_unpack_scales(b[i].scales, sc);
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(b[i].d) * sc[j];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] =
            static_cast<int8_t>(std::clamp(nearest_int(src[16 * j + l] / d), -4, 3) + 4);
      }
    }
    // Values 4..7 keep their high bit in hmask (element e: bit e/32 of byte e%32).
    std::memset(b[i].hmask, 0, sizeof b[i].hmask);
    uint8_t low[kQK_K];
    for (int e = 0; e < static_cast<int>(kQK_K); ++e) {
      if (L[e] > 3) b[i].hmask[e % 32] = static_cast<uint8_t>(b[i].hmask[e % 32] | (1 << (e / 32)));
      low[e] = static_cast<uint8_t>(L[e] > 3 ? L[e] - 4 : L[e]);
    }
    pack_2bit(low, b[i].qs);
  }
}

void quantize_q4_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    uint8_t L[kQK_K];
    quantize_k45(src, 15, -1.f, 0.1f, 20, L, &b[i].d, &b[i].dmin, b[i].scales);
    for (int h = 0; h < 4; ++h) {
      for (int l = 0; l < 32; ++l) {
        b[i].qs[32 * h + l] = static_cast<uint8_t>(L[64 * h + l] | (L[64 * h + 32 + l] << 4));
      }
    }
  }
}

void quantize_q5_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    uint8_t L[kQK_K];
    quantize_k45(src, 31, -0.5f, 0.1f, 15, L, &b[i].d, &b[i].dmin, b[i].scales);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int h = 0; h < 4; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * h + l];
        const int hi = L[64 * h + 32 + l];
        b[i].qh[l] =
            static_cast<uint8_t>(b[i].qh[l] | ((lo >> 4) << (2 * h)) | ((hi >> 4) << (2 * h + 1)));
        b[i].qs[32 * h + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      }
    }
  }
}

void quantize_q6_k(const float* src, void* dst, size_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (size_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_scale_rmse(16, 32, src + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b[i].d = fp32_to_fp16(1 / iscale);
    for (int g = 0; g < 16; ++g) {
      b[i].scales[g] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[g])));
    }
    for (int g = 0; g < 16; ++g) {
      const float d = fp16_to_fp32(b[i].d) * b[i].scales[g];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * g + l] =
            static_cast<int8_t>(std::clamp(nearest_int(src[16 * g + l] / d), -32, 31) + 32);
      }
    }
    // Element 128h + 32k + l: low nibble into ql[64h + 32(k&1) + l] (high half if k >= 2), top
    // two bits into qh[32h + l] at bit 2k.
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int8_t* e = L + 128 * h + l;
        b[i].ql[64 * h + l] = static_cast<uint8_t>((e[0] & 0xF) | ((e[64] & 0xF) << 4));
        b[i].ql[64 * h + 32 + l] = static_cast<uint8_t>((e[32] & 0xF) | ((e[96] & 0xF) << 4));
        b[i].qh[32 * h + l] = static_cast<uint8_t>((e[0] >> 4) | ((e[32] >> 4) << 2) |
                                                   ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
      }
    }
  }
}

}  // namespace slm::ref::detail
