// fp16 / bf16 conversions: exhaustive over all 65536 patterns, plus every rounding midpoint.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/ref/quant.h"

namespace slm {
namespace {

bool is_half_nan(uint32_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool is_bf16_nan(uint32_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

// The value of a half pattern from its definition, in double.
double half_value(uint32_t h) {
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  const int exp = static_cast<int>((h >> 10) & 0x1f);
  const int mant = static_cast<int>(h & 0x3ff);
  if (exp == 31) return sign * std::numeric_limits<double>::infinity();
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(Fp16, DecodesEveryPatternByDefinition) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (is_half_nan(h)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), half_value(h)) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;  // -0 stays -0
    }
  }
}

TEST(Fp16, RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint16_t back = fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h)));
    if (is_half_nan(h)) {
      // NaN stays NaN with its sign and payload; a signalling NaN comes back quiet.
      EXPECT_EQ(back, h | 0x200u) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Between two adjacent finite halves a < b: the midpoint goes to the even one, anything above
// it to b and anything below to a. Covers subnormals, the normal/subnormal border and overflow.
TEST(Fp16, RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7c00u; ++h) {
      const double a = std::fabs(half_value(h));
      const double b = h + 1 == 0x7c00u ? 65536.0 : std::fabs(half_value(h + 1));
      const auto mid = static_cast<float>((a + b) / 2);  // exact: one bit more than a half
      ASSERT_EQ(static_cast<double>(mid), (a + b) / 2);
      const float s = sign ? -1.0f : 1.0f;
      const uint32_t even = (h & 1u) ? h + 1 : h;
      ASSERT_EQ(fp32_to_fp16(s * mid), sign | even) << std::hex << h;
      ASSERT_EQ(fp32_to_fp16(s * std::nextafter(mid, 1e30f)), sign | (h + 1)) << std::hex << h;
      ASSERT_EQ(fp32_to_fp16(s * std::nextafter(mid, 0.0f)), sign | h) << std::hex << h;
    }
  }
}

TEST(Fp16, SpecialValues) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // A NaN whose payload lives only in the low bits must not turn into Inf.
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::bit_cast<float>(0x7f800001u))));
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
}

// g++ 12 defines __FLT16_MAX__ on aarch64 but offers _Float16 in C only (C++ from g++ 13 on).
#if defined(__FLT16_MAX__) && (defined(__clang__) || !defined(__aarch64__) || __GNUC__ >= 13)
// The compiler's own float -> _Float16 conversion (IEEE round to nearest even) as an oracle, on a
// spread of binary32 patterns including NaNs, subnormals and huge values.
TEST(Fp16, AgreesWithCompilerFloat16) {
  for (uint64_t bits = 0; bits < 0x100000000ull; bits += 65521) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const auto h = static_cast<_Float16>(f);
    uint16_t expect = 0;
    std::memcpy(&expect, &h, sizeof expect);
    ASSERT_EQ(fp32_to_fp16(f), expect) << std::hex << bits;
  }
}
#endif

TEST(Bf16, RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16);
    const uint16_t back = fp32_to_bf16(f);
    if (is_bf16_nan(h)) {
      EXPECT_EQ(back, h | 0x40u) << std::hex << h;  // quieted, still NaN
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(Bf16, RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7f80u) == 0x7f80u) continue;  // Inf / NaN have no upper neighbour
    const uint32_t base = h << 16;
    const uint32_t even = (h & 1u) ? h + 1 : h;  // h + 1 may be the next binade or Inf: right
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(base | 0x8000u)), even) << std::hex << h;
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(base | 0x8001u)), h + 1) << std::hex << h;
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(base | 0x7fffu)), h) << std::hex << h;
  }
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to Inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie, to even
  EXPECT_TRUE(is_bf16_nan(fp32_to_bf16(std::bit_cast<float>(0x7f800001u))));
}

}  // namespace
}  // namespace slm
