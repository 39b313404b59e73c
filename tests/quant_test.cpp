// Layout tests of the reference kernels: blocks built by hand from the ggml layout description
// (written here independently of kernels/ref) must dequantize to the values they encode, and
// the quantizers must make ggml's exact choices (scale, rounding) on hand-picked inputs.
#include "kernels/ref/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/ref/blocks.h"

namespace slm {
namespace {

std::vector<float> dequant(DType type, const void* src, size_t n) {
  std::vector<float> out(n, -12345.0f);
  ref::dequantize_row(type, src, out.data(), n);
  return out;
}

TEST(QuantRef, SupportTable) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                  DType::kQ5_1, DType::kQ8_0, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K,
                  DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K}) {
    EXPECT_TRUE(ref::supports(t)) << dtype_name(t);
  }
  for (DType t :
       {DType::kIQ2_XXS, DType::kIQ4_NL, DType::kI8, DType::kF64, DType::kTQ1_0, DType::kMXFP4}) {
    EXPECT_FALSE(ref::supports(t)) << dtype_name(t);
    EXPECT_FALSE(ref::can_quantize(t)) << dtype_name(t);
  }
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                  DType::kQ5_1, DType::kQ8_0, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K,
                  DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K}) {
    EXPECT_TRUE(ref::can_quantize(t)) << dtype_name(t);
  }
}

TEST(QuantRef, VecDotTypes) {
  EXPECT_EQ(ref::vec_dot_type(DType::kF32), DType::kF32);
  EXPECT_EQ(ref::vec_dot_type(DType::kF16), DType::kF16);
  EXPECT_EQ(ref::vec_dot_type(DType::kBF16), DType::kF32);  // transformers keeps them wide
  EXPECT_EQ(ref::vec_dot_type(DType::kQ4_0), DType::kQ8_0);
  EXPECT_EQ(ref::vec_dot_type(DType::kQ4_1), DType::kQ8_1);
  EXPECT_EQ(ref::vec_dot_type(DType::kQ5_0), DType::kQ8_0);
  EXPECT_EQ(ref::vec_dot_type(DType::kQ5_1), DType::kQ8_1);
  EXPECT_EQ(ref::vec_dot_type(DType::kQ8_0), DType::kQ8_0);
  for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_EQ(ref::vec_dot_type(t), DType::kQ8_K) << dtype_name(t);
  }
}

TEST(QuantRef, BlockSizesMatchTypeTable) {
  EXPECT_EQ(traits(DType::kQ4_0).block_bytes, sizeof(BlockQ4_0));
  EXPECT_EQ(traits(DType::kQ4_1).block_bytes, sizeof(BlockQ4_1));
  EXPECT_EQ(traits(DType::kQ5_0).block_bytes, sizeof(BlockQ5_0));
  EXPECT_EQ(traits(DType::kQ5_1).block_bytes, sizeof(BlockQ5_1));
  EXPECT_EQ(traits(DType::kQ8_0).block_bytes, sizeof(BlockQ8_0));
  EXPECT_EQ(traits(DType::kQ8_1).block_bytes, sizeof(BlockQ8_1));
  EXPECT_EQ(traits(DType::kQ2_K).block_bytes, sizeof(BlockQ2_K));
  EXPECT_EQ(traits(DType::kQ3_K).block_bytes, sizeof(BlockQ3_K));
  EXPECT_EQ(traits(DType::kQ4_K).block_bytes, sizeof(BlockQ4_K));
  EXPECT_EQ(traits(DType::kQ5_K).block_bytes, sizeof(BlockQ5_K));
  EXPECT_EQ(traits(DType::kQ6_K).block_bytes, sizeof(BlockQ6_K));
  EXPECT_EQ(traits(DType::kQ8_K).block_bytes, sizeof(BlockQ8_K));
}

// ---- legacy blocks, literal bytes ----

TEST(QuantRef, Q4_0LiteralBlock) {
  // d = 1.0 (0x3c00); byte j = nibble j (element j) | nibble 15-j << 4 (element j+16).
  uint8_t raw[18] = {0x00, 0x3c};
  for (int j = 0; j < 16; ++j) raw[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequant(DType::kQ4_0, raw, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j - 8)) << j;
    EXPECT_EQ(y[16 + j], static_cast<float>(7 - j)) << j;
  }
}

TEST(QuantRef, Q4_1LiteralBlock) {
  // d = 0.5 (0x3800), m = -2.0 (0xc000): x = q / 2 - 2.
  uint8_t raw[20] = {0x00, 0x38, 0x00, 0xc0};
  for (int j = 0; j < 16; ++j) raw[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequant(DType::kQ4_1, raw, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 2.0f) << j;
    EXPECT_EQ(y[16 + j], 0.5f * (15 - j) - 2.0f) << j;
  }
}

TEST(QuantRef, Q5_0AndQ5_1LiteralBlocks) {
  // Element e has q = e (0..31): nibble e % 16, 5th bit = e >= 16 = bit e of the LE u32 qh.
  uint8_t q50[22] = {0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};              // d = 1, qh = 0xffff0000
  uint8_t q51[24] = {0x00, 0x3c, 0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};  // d = 1, m = 1
  for (int j = 0; j < 16; ++j) q50[6 + j] = q51[8 + j] = static_cast<uint8_t>(j | (j << 4));
  const std::vector<float> a = dequant(DType::kQ5_0, q50, 32);
  const std::vector<float> b = dequant(DType::kQ5_1, q51, 32);
  for (int e = 0; e < 32; ++e) {
    EXPECT_EQ(a[e], static_cast<float>(e - 16)) << e;
    EXPECT_EQ(b[e], static_cast<float>(e + 1)) << e;
  }
  // Only bit 3 of qh set: element 3 gets +16, nothing else changes.
  q50[4] = q50[5] = 0;
  q50[2] = 0x08;
  const std::vector<float> c = dequant(DType::kQ5_0, q50, 32);
  for (int e = 0; e < 32; ++e)
    EXPECT_EQ(c[e], static_cast<float>((e % 16) + (e == 3 ? 16 : 0) - 16));
}

TEST(QuantRef, Q8LiteralBlocks) {
  uint8_t q80[34] = {0x00, 0x40};  // d = 2
  uint8_t q81[36] = {0x00, 0x40, 0x00, 0x00};
  for (int j = 0; j < 32; ++j)
    q80[2 + j] = q81[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  const std::vector<float> a = dequant(DType::kQ8_0, q80, 32);
  const std::vector<float> b = dequant(DType::kQ8_1, q81, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(a[j], 2.0f * (j * 8 - 128));
    EXPECT_EQ(b[j], 2.0f * (j * 8 - 128));
  }
  BlockQ8_K k{};
  k.d = 0.25f;
  for (int j = 0; j < 256; ++j) k.qs[j] = static_cast<int8_t>(j - 128);
  const std::vector<float> c = dequant(DType::kQ8_K, &k, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(c[j], 0.25f * (j - 128));
}

TEST(QuantRef, FloatRows) {
  const float src[3] = {1.5f, -2.25f, 65504.0f};
  uint16_t h[3];
  ref::quantize_row(DType::kF16, src, h, 3);
  EXPECT_EQ(dequant(DType::kF16, h, 3), std::vector<float>(src, src + 3));
  ref::quantize_row(DType::kBF16, src, h, 3);
  const std::vector<float> b = dequant(DType::kBF16, h, 3);
  EXPECT_EQ(b[0], 1.5f);
  EXPECT_EQ(b[1], -2.25f);
  EXPECT_EQ(b[2], 65536.0f);  // 65504 needs 11 significant bits; bf16 keeps 8
  float f[3];
  ref::quantize_row(DType::kF32, src, f, 3);
  EXPECT_EQ(dequant(DType::kF32, f, 3), std::vector<float>(src, src + 3));
}

// ---- quantizer choices (ggml quantize_row_*_ref) ----

TEST(QuantRef, Q8_0RoundsHalfAwayFromZero) {
  // amax = 127 -> d = 1, id = 1: x * id lands exactly on .5 ties; roundf moves them away from 0.
  float x[32] = {};
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = -126.5f;
  BlockQ8_0 b{};
  ref::quantize_row(DType::kQ8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 1);
  EXPECT_EQ(b.qs[4], -127);
  BlockQ8_1 b1{};
  ref::quantize_row(DType::kQ8_1, x, &b1, 32);
  EXPECT_EQ(b1.d, 0x3c00);
  EXPECT_EQ(std::memcmp(b1.qs, b.qs, 32), 0);
  EXPECT_EQ(fp16_to_fp32(b1.s), 127.0f + 3 - 3 + 1 - 127);  // d * sum(q)
}

TEST(QuantRef, Q4_0UsesSignedMaxAndTruncation) {
  // max by |x| is -8 -> d = 1, id = 1; q = trunc(x + 8.5) clamped to 15.
  float x[32] = {};
  x[0] = -8.0f;
  x[1] = 7.0f;
  x[2] = 7.9f;   // 16.4 -> 16 -> clamped 15
  x[3] = -0.5f;  // 8.0 -> 8
  x[4] = 0.49f;  // 8.99 -> 8
  x[16] = 0.5f;  // 9.0 -> 9
  BlockQ4_0 b{};
  ref::quantize_row(DType::kQ4_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.qs[0] & 0xF, 0);
  EXPECT_EQ(b.qs[1] & 0xF, 15);
  EXPECT_EQ(b.qs[2] & 0xF, 15);
  EXPECT_EQ(b.qs[3] & 0xF, 8);
  EXPECT_EQ(b.qs[4] & 0xF, 8);
  EXPECT_EQ(b.qs[0] >> 4, 9);
  EXPECT_EQ(b.qs[5], 0x88);  // zeros -> 8
  // Positive max: d = -max/8 is negative and max maps to q = 0 again.
  x[0] = 16.0f;
  ref::quantize_row(DType::kQ4_0, x, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), -2.0f);
  EXPECT_EQ(b.qs[0] & 0xF, 0);
}

TEST(QuantRef, Q8_KUsesNearestEvenAndSignedMax) {
  std::vector<float> x(256, 0.0f);
  x[0] = -127.0f;  // signed max -> iscale = 1, d = 1
  x[1] = 2.5f;     // ties go to even (ggml nearest_int)
  x[2] = 3.5f;
  x[17] = -1.5f;
  BlockQ8_K b{};
  ref::quantize_row(DType::kQ8_K, x.data(), &b, 256);
  EXPECT_EQ(b.d, 1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 4);
  EXPECT_EQ(b.qs[17], -2);
  EXPECT_EQ(b.bsums[0], -127 + 2 + 4);
  EXPECT_EQ(b.bsums[1], -2);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
  // Positive max: iscale = -127/max flips signs and d = 1/iscale is negative.
  x[0] = 254.0f;
  ref::quantize_row(DType::kQ8_K, x.data(), &b, 256);
  EXPECT_EQ(b.d, -2.0f);
  EXPECT_EQ(b.qs[0], -127);
  // All zero: d = 0 and everything zero.
  std::vector<float> z(256, 0.0f);
  ref::quantize_row(DType::kQ8_K, z.data(), &b, 256);
  EXPECT_EQ(b.d, 0.0f);
  for (int g = 0; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
}

TEST(QuantRef, AllZeroBlocksQuantizeToZero) {
  const std::vector<float> z(64, 0.0f);
  for (DType t :
       {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ8_1}) {
    std::vector<uint8_t> q(row_bytes(t, 64), 0xAA);
    ref::quantize_row(t, z.data(), q.data(), 64);
    for (float v : dequant(t, q.data(), 64)) EXPECT_EQ(v, 0.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace slm
