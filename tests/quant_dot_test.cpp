// Numerics of the reference kernels on random data: quantize -> dequantize error bounds per
// type, and vec_dot against the double-precision dot of the dequantized rows (the per-matmul
// exactness contract of DESIGN.md), at odd block counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"

namespace slm {
namespace {

std::vector<float> random_row(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

std::vector<float> dequant(DType t, const void* src, size_t n) {
  std::vector<float> y(n);
  ref::dequantize_row(t, src, y.data(), n);
  return y;
}

std::vector<uint8_t> quant(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, x.size()));
  ref::quantize_row(t, x.data(), q.data(), x.size());
  return q;
}

// Largest allowed |dequantize(quantize(x)) - x| in a block. step/2 is the rounding error; the
// slack covers the fp16-rounded scale, and clamping of the top level in Q4_0/Q5_0 (whose grid
// is asymmetric around 0) costs up to a whole step.
double block_bound(DType t, const float* x, size_t len) {
  double amax = 0, mn = x[0], mx = x[0];
  for (size_t i = 0; i < len; ++i) {
    amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
    mn = std::min(mn, static_cast<double>(x[i]));
    mx = std::max(mx, static_cast<double>(x[i]));
  }
  const double fp16_slack = 1.0 / 1024;
  switch (t) {
    case DType::kF16:
      return amax * fp16_slack / 2 + 6e-8;
    case DType::kBF16:
      return amax / 256;
    case DType::kQ8_0:
    case DType::kQ8_1:
      return amax / 127 * (0.5 + 127 * fp16_slack);
    case DType::kQ8_K:
      return amax / 127 * 0.5001;
    case DType::kQ4_0:
      return amax / 8 * (1 + 8 * fp16_slack);
    case DType::kQ5_0:
      return amax / 16 * (1 + 16 * fp16_slack);
    case DType::kQ4_1:
      return (mx - mn) / 15 * (0.5 + 15 * fp16_slack) + std::fabs(mn) * fp16_slack;
    case DType::kQ5_1:
      return (mx - mn) / 31 * (0.5 + 31 * fp16_slack) + std::fabs(mn) * fp16_slack;
    default:
      return 0;
  }
}

TEST(QuantRefNumerics, RoundTripErrorBounds) {
  std::mt19937 rng(42);
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ8_1, DType::kQ4_0, DType::kQ4_1,
                  DType::kQ5_0, DType::kQ5_1, DType::kQ8_K}) {
    const size_t blk = t == DType::kQ8_K ? kQK_K : 32;
    for (size_t nblocks : {1u, 3u, 7u}) {
      const size_t n = blk * nblocks;
      std::vector<float> x = random_row(rng, n, 0.7f);
      x[n / 2] = 0.0f;
      for (size_t i = 0; i < 5; ++i) x[i * 3] = -x[i * 3] * 4.0f;  // outliers of both signs
      const std::vector<uint8_t> q = quant(t, x);
      const std::vector<float> y = dequant(t, q.data(), n);
      const size_t group = t == DType::kF16 || t == DType::kBF16 ? 1 : blk;
      for (size_t b = 0; b < n / group; ++b) {
        const double bound = block_bound(t, &x[b * group], group);
        for (size_t i = b * group; i < (b + 1) * group; ++i) {
          ASSERT_LE(std::fabs(static_cast<double>(y[i]) - x[i]), bound)
              << dtype_name(t) << " n=" << n << " i=" << i << " x=" << x[i] << " y=" << y[i];
        }
      }
    }
  }
}

TEST(QuantRefNumerics, KQuantRoundTripNmse) {
  // ggml's reference K-quantizers on Gaussian data: relative squared error per type.
  std::mt19937 rng(5);
  const struct {
    DType type;
    double bound;
  } cases[] = {{DType::kQ2_K, 0.15},  {DType::kQ3_K, 0.05},  {DType::kQ4_K, 0.012},
               {DType::kQ5_K, 0.003}, {DType::kQ6_K, 0.001}, {DType::kQ8_K, 1e-4}};
  for (const auto& c : cases) {
    for (size_t nblocks : {1u, 3u, 7u}) {
      const size_t n = kQK_K * nblocks;
      const std::vector<float> x = random_row(rng, n, 0.02f);
      const std::vector<uint8_t> q = quant(c.type, x);
      const std::vector<float> y = dequant(c.type, q.data(), n);
      double num = 0, den = 0;
      for (size_t i = 0; i < n; ++i) {
        num += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
        den += static_cast<double>(x[i]) * x[i];
      }
      EXPECT_LT(num / den, c.bound) << dtype_name(c.type) << " n=" << n;
    }
  }
}

// A weight row of type t: quantized from random floats, or (K-quants, when `raw`) random bytes
// with the fp16 super-block scales replaced by sane values, so that every bit pattern of the
// quants and packed group scales occurs.
std::vector<uint8_t> random_weight_row(std::mt19937& rng, DType t, size_t n, bool raw) {
  if (!raw || traits(t).block_elems != kQK_K || t == DType::kQ8_K)
    return quant(t, random_row(rng, n, 0.05f));
  std::vector<uint8_t> w(row_bytes(t, n));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& v : w) v = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(1e-4f, 1e-3f);
  const size_t bb = traits(t).block_bytes;
  for (size_t off = 0; off < w.size(); off += bb) {
    uint8_t* blk = &w[off];
    const uint16_t d = fp32_to_fp16(scale(rng));
    const uint16_t dmin = fp32_to_fp16(scale(rng));
    switch (t) {
      case DType::kQ2_K:
        std::memcpy(blk + offsetof(BlockQ2_K, d), &d, 2);
        std::memcpy(blk + offsetof(BlockQ2_K, dmin), &dmin, 2);
        break;
      case DType::kQ3_K:
        std::memcpy(blk + offsetof(BlockQ3_K, d), &d, 2);
        break;
      case DType::kQ4_K:
        std::memcpy(blk + offsetof(BlockQ4_K, d), &d, 2);
        std::memcpy(blk + offsetof(BlockQ4_K, dmin), &dmin, 2);
        break;
      case DType::kQ5_K:
        std::memcpy(blk + offsetof(BlockQ5_K, d), &d, 2);
        std::memcpy(blk + offsetof(BlockQ5_K, dmin), &dmin, 2);
        break;
      case DType::kQ6_K:
        std::memcpy(blk + offsetof(BlockQ6_K, d), &d, 2);
        break;
      default:
        break;
    }
  }
  return w;
}

// Q4_1/Q5_1 dots use Q8_1's stored s = fp16(d * sum q) for the min term, as ggml does, where the
// dequantized dot has m * d * sum q. Returns sum_blocks m * (s - d * sum q) to add to the
// dequantized reference.
double q8_1_min_term_correction(DType t, const uint8_t* w, const uint8_t* x, size_t n) {
  if (t != DType::kQ4_1 && t != DType::kQ5_1) return 0.0;
  const size_t wb = traits(t).block_bytes;
  double c = 0;
  for (size_t b = 0; b < n / 32; ++b) {
    uint16_t m16 = 0;
    std::memcpy(&m16, w + b * wb + 2, 2);  // Q4_1 / Q5_1: d, then m
    BlockQ8_1 xb{};
    std::memcpy(&xb, x + b * sizeof(BlockQ8_1), sizeof xb);
    int sum = 0;
    for (int8_t q : xb.qs) sum += q;
    const double exact = static_cast<double>(fp16_to_fp32(xb.d)) * sum;
    c += static_cast<double>(fp16_to_fp32(m16)) * (fp16_to_fp32(xb.s) - exact);
  }
  return c;
}

TEST(QuantRefNumerics, VecDotMatchesDequantizedDot) {
  std::mt19937 rng(7);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                  DType::kQ5_1, DType::kQ8_0, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K,
                  DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K}) {
    const DType xt = ref::vec_dot_type(t);
    const size_t blk = std::max(traits(t).block_elems, traits(xt).block_elems) == 1
                           ? 32
                           : std::max(traits(t).block_elems, traits(xt).block_elems);
    for (size_t nblocks : {1u, 3u, 7u}) {
      const size_t n = blk * nblocks;
      for (int rep = 0; rep < 4; ++rep) {
        const std::vector<uint8_t> w = random_weight_row(rng, t, n, rep % 2 == 1);
        const std::vector<uint8_t> xq = quant(xt, random_row(rng, n, 1.0f));
        const std::vector<float> wf = dequant(t, w.data(), n);
        const std::vector<float> xf = dequant(xt, xq.data(), n);
        double expect = q8_1_min_term_correction(t, w.data(), xq.data(), n);
        double magnitude = std::fabs(expect);
        for (size_t i = 0; i < n; ++i) {
          expect += static_cast<double>(wf[i]) * xf[i];
          magnitude += std::fabs(static_cast<double>(wf[i]) * xf[i]);
        }
        const float got = ref::vec_dot(t, w.data(), xq.data(), n);
        // Float rounding of a few per-block products and the sum over blocks.
        EXPECT_NEAR(got, expect, 2e-6 * magnitude + 1e-30)
            << dtype_name(t) << " n=" << n << " rep=" << rep;
      }
    }
  }
}

TEST(QuantRefNumerics, VecDotOfQuantizedActivationsTracksFloatDot) {
  // End to end: quantizing the activations costs at most a few percent of the float dot.
  std::mt19937 rng(9);
  const size_t n = 7 * 256;
  const std::vector<float> wf = random_row(rng, n, 1.0f);
  const std::vector<float> xf = random_row(rng, n, 1.0f);
  double exact = 0, magnitude = 0;
  for (size_t i = 0; i < n; ++i) {
    exact += static_cast<double>(wf[i]) * xf[i];
    magnitude += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  }
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1}) {
    const std::vector<uint8_t> w = quant(t, wf);
    const std::vector<uint8_t> x = quant(ref::vec_dot_type(t), xf);
    const double tol = (t == DType::kQ8_0 ? 0.01 : 0.05) * magnitude;
    EXPECT_NEAR(ref::vec_dot(t, w.data(), x.data(), n), exact, tol) << dtype_name(t);
  }
}

}  // namespace
}  // namespace slm
