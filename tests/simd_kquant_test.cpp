// The K-quant and legacy-block dots of every ISA against the scalar reference on blocks whose
// bytes are random or extreme (all bits set, all clear, sign bits), not only on what the reference
// quantizers produce: every scale, quant and 5th/6th bit value, and activations at -128 and 127
// (the ends of vpmaddubsw's and sdot's exact range). Reference-quantized random rows are checked
// in simd_kernels_test.cpp.
//
// Contract (kernels/dispatch.h): each block's term is bit-identical to the reference's, only the
// order of adding terms may differ. So a one-super-block dot must equal the reference exactly,
// and a whole row agrees to float rounding of the sum of |term|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "tests/kernel_test_util.h"

namespace slm {


namespace {

constexpr size_t kSuperBlockCounts[] = {1, 2, 3, 7, 9};
constexpr uint16_t kFp16One = 0x3C00;


class SimdBlockDots : public testing::TestWithParam<Isa> {
 protected:
  const KernelSet& k() const { return kernel_set(GetParam()); }
};

// Byte offsets of the fp16 scale fields of a weight block (d, and dmin / m where it has one).
std::vector<size_t> fp16_fields(DType t) {
  switch (t) {
    case DType::kQ2_K:
      return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case DType::kQ3_K:
      return {offsetof(BlockQ3_K, d)};
    case DType::kQ4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::kQ5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::kQ6_K:
      return {offsetof(BlockQ6_K, d)};
    case DType::kQ4_1:
      return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case DType::kQ5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    default:
      return {0};  // Q4_0, Q5_0, Q8_0: d first
  }
}

// Byte patterns for whole blocks: random, then every bit set, none, only sign bits, no sign bits.
enum class Fill { kRandom, kOnes, kZeros, kSignBits, kLowBits };
constexpr Fill kFills[] = {Fill::kRandom, Fill::kOnes, Fill::kZeros, Fill::kSignBits,
                           Fill::kLowBits};

uint8_t fill_byte(Fill f, std::mt19937& rng) {
  switch (f) {
    case Fill::kOnes:
      return 0xFF;
    case Fill::kZeros:
      return 0x00;
    case Fill::kSignBits:
      return 0x80;
    case Fill::kLowBits:
      return 0x7F;
    default:
      return static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
  }
}

// nb weight blocks of type t, bytes from `f`, fp16 scales finite: random magnitudes and signs,
// or exactly 1 when `unit_scales` (then every legacy block term is a small exact integer).
std::vector<uint8_t> weight_blocks(DType t, size_t nb, Fill f, bool unit_scales,
                                   std::mt19937& rng) {
  const size_t bytes = traits(t).block_bytes;
  std::vector<uint8_t> w(nb * bytes);
  std::uniform_real_distribution<float> mag(0.01f, 2.0f);
  for (size_t b = 0; b < nb; ++b) {
    for (size_t j = 0; j < bytes; ++j) w[b * bytes + j] = fill_byte(f, rng);
    for (size_t off : fp16_fields(t)) {
      const float v = unit_scales ? 1.0f : (rng() % 2 == 0 ? 1.0f : -1.0f) * mag(rng);
      const uint16_t h = fp32_to_fp16(v);
      std::memcpy(&w[b * bytes + off], &h, sizeof h);
    }
  }
  return w;
}

// Activation quants: random over the whole int8 range, or all at one end.
int8_t act_quant(Fill f, std::mt19937& rng) {
  switch (f) {
    case Fill::kOnes:
      return 127;
    case Fill::kSignBits:
      return -128;
    case Fill::kZeros:
      return 0;
    default:
      return static_cast<int8_t>(std::uniform_int_distribution<int>(-128, 127)(rng));
  }
}

// Q8_K blocks with consistent bsums (the invariant every Q8_K quantizer keeps) and d > 0 (1 when
// `unit_scale`).
std::vector<BlockQ8_K> q8_k_blocks(size_t nb, Fill f, std::mt19937& rng, bool unit_scale = false) {
  std::vector<BlockQ8_K> x(nb);
  std::uniform_real_distribution<float> d(1e-3f, 0.1f);
  for (BlockQ8_K& b : x) {
    b.d = unit_scale ? 1.0f : d(rng);
    for (int8_t& q : b.qs) q = act_quant(f, rng);
    for (size_t g = 0; g < kQK_K / 16; ++g) {
      int s = 0;
      for (size_t l = 0; l < 16; ++l) s += b.qs[16 * g + l];
      b.bsums[g] = static_cast<int16_t>(s);
    }
  }
  return x;
}

// sum over blocks of |block term|, the scale of the rounding from adding terms in another order.
double abs_terms(DType t, const uint8_t* w, const void* x, size_t xbytes, size_t nb) {
  double s = 0;
  const size_t block = traits(t).block_elems;
  const auto* xb = static_cast<const uint8_t*>(x);
  for (size_t b = 0; b < nb; ++b) {
    s += std::fabs(ref::vec_dot(t, w + b * traits(t).block_bytes, xb + b * xbytes, block));
  }
  return s;
}

TEST_P(SimdBlockDots, KQuantBlockTermsMatchReferenceExactly) {
  std::mt19937 rng(2024);
  for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const size_t wbytes = traits(t).block_bytes;
    for (Fill wf : kFills) {
      for (Fill xf : kFills) {
        for (size_t nb : kSuperBlockCounts) {
          const std::vector<uint8_t> w = weight_blocks(t, nb, wf, false, rng);
          const std::vector<BlockQ8_K> x = q8_k_blocks(nb, xf, rng);
          for (size_t b = 0; b < nb; ++b) {  // one super-block: its term alone, bit for bit
            EXPECT_EQ(k().dot(t, &w[b * wbytes], &x[b], kQK_K),
                      ref::vec_dot(t, &w[b * wbytes], &x[b], kQK_K))
                << dtype_name(t) << " fills " << int(wf) << "/" << int(xf) << " block " << b;
          }
          const size_t n = nb * kQK_K;
          EXPECT_NEAR(k().dot(t, w.data(), x.data(), n), ref::vec_dot(t, w.data(), x.data(), n),
                      1e-6 * abs_terms(t, w.data(), x.data(), sizeof(BlockQ8_K), nb) + 1e-30)
              << dtype_name(t) << " fills " << int(wf) << "/" << int(xf) << " blocks " << nb;
        }
      }
    }
  }
}

// Random quants and scales with unit fp16 scales: every super-block term is an integer below 2^24
// and so is every partial sum, so the whole row is exact in any order. This checks the lanes of
// batched kernels that a one-block dot never reaches.
TEST_P(SimdBlockDots, KQuantRowsAreExactOnIntegerScales) {
  std::mt19937 rng(77);
  for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    for (size_t nb : {1, 5, 8, 9, 16, 19}) {
      const std::vector<uint8_t> w = weight_blocks(t, nb, Fill::kRandom, true, rng);
      const std::vector<BlockQ8_K> x = q8_k_blocks(nb, Fill::kRandom, rng, true);
      const size_t n = nb * kQK_K;
      EXPECT_EQ(k().dot(t, w.data(), x.data(), n), ref::vec_dot(t, w.data(), x.data(), n))
          << dtype_name(t) << " blocks " << nb;
    }
  }
}

// Legacy 32-element blocks with unit scales (and for Q4_1 / Q5_1 unit m and a small integer s):
// every block term and every partial sum is an exact integer, so any order gives the same float.
// Block counts cover the 8-block main loop and its tail. (Q8_0 weights, which must stay in
// [-127, 127], are checked in simd_kernels_test.cpp.)
template <typename X>
std::vector<X> legacy_act_blocks(size_t nb, Fill f, std::mt19937& rng) {
  std::vector<X> x(nb);
  for (size_t i = 0; i < nb; ++i) {
    x[i].d = kFp16One;
    // Q8_0 / Q8_1 quantizers clamp to [-127, 127]; -128 never occurs.
    for (int8_t& q : x[i].qs) q = f == Fill::kSignBits ? -127 : act_quant(f, rng);
    if constexpr (requires { x[i].s; }) x[i].s = fp32_to_fp16(float(i % 5) - 2.0f);
  }
  return x;
}

template <typename X>
void expect_legacy_exact(const KernelSet& k, DType t) {
  std::mt19937 rng(static_cast<uint32_t>(t));
  for (Fill wf : kFills) {
    for (Fill xf : kFills) {
      for (size_t nb : {1, 7, 8, 9, 16, 17, 33}) {
        const std::vector<uint8_t> w = weight_blocks(t, nb, wf, true, rng);
        const std::vector<X> x = legacy_act_blocks<X>(nb, xf, rng);
        const size_t n = nb * 32;
        EXPECT_EQ(k.dot(t, w.data(), x.data(), n), ref::vec_dot(t, w.data(), x.data(), n))
            << dtype_name(t) << " fills " << int(wf) << "/" << int(xf) << " blocks " << nb;
      }
    }
  }
}

TEST_P(SimdBlockDots, LegacyDotsAreExactOnIntegerScales) {
  expect_legacy_exact<BlockQ8_0>(k(), DType::kQ4_0);
  expect_legacy_exact<BlockQ8_0>(k(), DType::kQ5_0);
  expect_legacy_exact<BlockQ8_1>(k(), DType::kQ4_1);
  expect_legacy_exact<BlockQ8_1>(k(), DType::kQ5_1);
}

INSTANTIATE_TEST_SUITE_P(Isa, SimdBlockDots, testing::ValuesIn(available_isas()), test::isa_label);

}  // namespace
}  // namespace slm
