// K-quant layouts: super-blocks packed here from chosen quants and scales, following ggml's
// layout description (ggml-common.h) independently of kernels/ref, must dequantize to
// d * scale * q - dmin * min for every element. A misplaced bit anywhere fails.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"

namespace slm {
namespace {

constexpr float kD = 0.5f;       // exact in fp16
constexpr float kDmin = 0.125f;  // exact in fp16

struct Plan {
  std::vector<int> q;      // 256 quants as stored (unsigned, before any offset)
  std::vector<int> scale;  // per group
  std::vector<int> min;    // per group (types with mins)
};

Plan random_plan(std::mt19937& rng, int qmax, int groups, int smax) {
  Plan p;
  std::uniform_int_distribution<int> qd(0, qmax);
  std::uniform_int_distribution<int> sd(0, smax);
  for (int i = 0; i < 256; ++i) p.q.push_back(qd(rng));
  for (int g = 0; g < groups; ++g) {
    p.scale.push_back(sd(rng));
    p.min.push_back(sd(rng));
  }
  return p;
}

// 6-bit scale/min packing of Q4_K and Q5_K (12 bytes for 8 groups).
void pack_k4_scales(const Plan& p, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const int sc = p.scale[j];
    const int m = p.min[j];
    if (j < 4) {
      s[j] |= static_cast<uint8_t>(sc);
      s[j + 4] |= static_cast<uint8_t>(m);
    } else {
      s[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
      s[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      s[j] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
}

std::vector<float> dequant(DType t, const void* b) {
  std::vector<float> y(256);
  ref::dequantize_row(t, b, y.data(), 256);
  return y;
}

TEST(QuantRefK, Q2_KLayout) {
  std::mt19937 rng(1);
  for (int rep = 0; rep < 20; ++rep) {
    const Plan p = random_plan(rng, 3, 16, 15);
    BlockQ2_K b{};
    for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<uint8_t>(p.scale[g] | (p.min[g] << 4));
    for (int e = 0; e < 256; ++e) {  // element 128h + 32k + l -> qs[32h + l] bits 2k
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      b.qs[32 * h + l] |= static_cast<uint8_t>(p.q[e] << (2 * k));
    }
    b.d = fp32_to_fp16(kD);
    b.dmin = fp32_to_fp16(kDmin);
    const std::vector<float> y = dequant(DType::kQ2_K, &b);
    for (int e = 0; e < 256; ++e) {
      ASSERT_EQ(y[e], kD * p.scale[e / 16] * p.q[e] - kDmin * p.min[e / 16]) << e;
    }
  }
}

TEST(QuantRefK, Q3_KLayout) {
  std::mt19937 rng(2);
  for (int rep = 0; rep < 20; ++rep) {
    const Plan p = random_plan(rng, 7, 16, 63);  // q = 3-bit stored value, value q - 4
    BlockQ3_K b{};
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      b.qs[32 * h + l] |= static_cast<uint8_t>((p.q[e] & 3) << (2 * k));
      if (p.q[e] & 4) b.hmask[l] |= static_cast<uint8_t>(1 << (e / 32));
    }
    for (int j = 0; j < 16; ++j) {  // 6-bit scales: low nibbles, then 2-bit tops in bytes 8..11
      const int s = p.scale[j];
      if (j < 8) {
        b.scales[j] |= static_cast<uint8_t>(s & 0xF);
      } else {
        b.scales[j - 8] |= static_cast<uint8_t>((s & 0xF) << 4);
      }
      b.scales[8 + j % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (j / 4)));
    }
    b.d = fp32_to_fp16(kD);
    const std::vector<float> y = dequant(DType::kQ3_K, &b);
    for (int e = 0; e < 256; ++e) {
      ASSERT_EQ(y[e], kD * (p.scale[e / 16] - 32) * (p.q[e] - 4)) << e;
    }
  }
}

TEST(QuantRefK, Q4_KAndQ5_KLayout) {
  std::mt19937 rng(3);
  for (int rep = 0; rep < 20; ++rep) {
    const Plan p = random_plan(rng, 31, 8, 63);
    BlockQ4_K b4{};
    BlockQ5_K b5{};
    pack_k4_scales(p, b4.scales);
    pack_k4_scales(p, b5.scales);
    for (int e = 0; e < 256; ++e) {  // qs[32h + l]: low = 64h + l, high = 64h + 32 + l
      const int h = e / 64, hi = (e % 64) / 32, l = e % 32;
      b4.qs[32 * h + l] |= static_cast<uint8_t>((p.q[e] & 0xF) << (4 * hi));
      b5.qs[32 * h + l] |= static_cast<uint8_t>((p.q[e] & 0xF) << (4 * hi));
      if (p.q[e] & 16) b5.qh[l] |= static_cast<uint8_t>(1 << (2 * h + hi));
    }
    b4.d = b5.d = fp32_to_fp16(kD);
    b4.dmin = b5.dmin = fp32_to_fp16(kDmin);
    const std::vector<float> y4 = dequant(DType::kQ4_K, &b4);
    const std::vector<float> y5 = dequant(DType::kQ5_K, &b5);
    for (int e = 0; e < 256; ++e) {
      const int g = e / 32;
      ASSERT_EQ(y4[e], kD * p.scale[g] * (p.q[e] & 0xF) - kDmin * p.min[g]) << e;
      ASSERT_EQ(y5[e], kD * p.scale[g] * p.q[e] - kDmin * p.min[g]) << e;
    }
  }
}

TEST(QuantRefK, Q6_KLayout) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> sd(-128, 127);
  for (int rep = 0; rep < 20; ++rep) {
    const Plan p = random_plan(rng, 63, 16, 0);
    BlockQ6_K b{};
    std::vector<int> scale(16);
    for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<int8_t>(scale[g] = sd(rng));
    for (int e = 0; e < 256; ++e) {
      // element 128h + 32k + l: low nibble in ql[64h + 32(k&1) + l] (high nibble if k >= 2),
      // top 2 bits in qh[32h + l] at bit 2k.
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      b.ql[64 * h + 32 * (k & 1) + l] |= static_cast<uint8_t>((p.q[e] & 0xF) << (4 * (k >> 1)));
      b.qh[32 * h + l] |= static_cast<uint8_t>((p.q[e] >> 4) << (2 * k));
    }
    b.d = fp32_to_fp16(kD);
    const std::vector<float> y = dequant(DType::kQ6_K, &b);
    for (int e = 0; e < 256; ++e) ASSERT_EQ(y[e], kD * scale[e / 16] * (p.q[e] - 32)) << e;
  }
}

TEST(QuantRefK, ScaleHelpers) {
  Plan p;
  p.scale = {63, 1, 2, 3, 40, 50, 60, 33};
  p.min = {0, 63, 17, 5, 48, 32, 1, 62};
  uint8_t packed[12];
  pack_k4_scales(p, packed);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc = 0;
    uint8_t m = 0;
    k4_scale_min(j, packed, &sc, &m);
    EXPECT_EQ(sc, p.scale[j]) << j;
    EXPECT_EQ(m, p.min[j]) << j;
  }
}

}  // namespace
}  // namespace slm
