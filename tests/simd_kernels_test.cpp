// Every SIMD kernel against its scalar reference, for every ISA this machine can run (the scalar
// set is included as a check of the dispatch fallback). Contract (kernels/dispatch.h): quantizers
// give identical bytes; dots add bit-identical block terms in another order, so they agree to
// float rounding: |simd - ref| <= 1e-6 * sum_i |w_i x_i| (the bound is on the magnitude of the
// terms, since summing in another order can move a cancelling sum by that much), and exactly when
// all terms are small integers.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

constexpr size_t kBlockCounts[] = {1, 3, 7, 16, 33, 64};
constexpr uint16_t kFp16One = 0x3C00;


class SimdKernels : public testing::TestWithParam<Isa> {
 protected:
  const KernelSet& k() const { return kernel_set(GetParam()); }
};

std::vector<float> random_row(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

std::vector<uint8_t> ref_quant(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, x.size()));
  ref::quantize_row(t, x.data(), q.data(), x.size());
  return q;
}


void expect_dot_close(const KernelSet& k, DType wt, const void* w, const void* x, size_t n) {
  const float want = ref::vec_dot(wt, w, x, n);
  const float got = k.dot(wt, w, x, n);
  EXPECT_NEAR(got, want, 1e-6 * test::abs_dot(wt, w, x, n) + 1e-30)
      << dtype_name(wt) << " n=" << n << " isa=" << k.name;
}

// Weight types with a reference quantizer: random rows at odd block counts and mixed scales.
TEST_P(SimdKernels, DotsMatchReferenceOnRandomRows) {
  std::mt19937 rng(1234);
  for (DType wt : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
                   DType::kQ5_0, DType::kQ5_1, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K,
                   DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const size_t block = traits(wt).block_elems == 1 ? 32 : traits(wt).block_elems;
    for (size_t nb : kBlockCounts) {
      // F32/F16/BF16 also at lengths that are not a multiple of any vector width.
      for (size_t extra : {size_t{0}, size_t{traits(wt).block_elems == 1 ? 5u : 0u}}) {
        const size_t n = nb * block + extra;
        const auto w = ref_quant(wt, random_row(rng, n, 0.5f));
        const auto x = ref_quant(ref::vec_dot_type(wt), random_row(rng, n, 2.0f));
        expect_dot_close(k(), wt, w.data(), x.data(), n);
      }
    }
  }
}

// Whole-integer cases (scales 1.0): every term and partial sum is exact, so results are equal.
TEST_P(SimdKernels, Q8_0AndQ4_0EdgeValuesAreExact) {
  for (size_t nb : kBlockCounts) {
    std::vector<BlockQ8_0> x(nb), w8(nb);
    std::vector<BlockQ4_0> w4(nb);
    for (size_t i = 0; i < nb; ++i) {
      x[i].d = w8[i].d = w4[i].d = kFp16One;
      for (size_t j = 0; j < 32; ++j) {
        // Block patterns: all zero, all +-127 (same and opposite signs), alternating.
        const size_t p = i % 4;
        x[i].qs[j] = static_cast<int8_t>(p == 0 ? 0 : (j % 2 == 0 || p == 1 ? 127 : -127));
        w8[i].qs[j] = static_cast<int8_t>(p == 2 ? -127 : 127);
      }
      // Max nibbles (15 -> +7) and zero nibbles (-> -8), mixed in one block.
      for (size_t j = 0; j < 16; ++j)
        w4[i].qs[j] = static_cast<uint8_t>(i % 2 == 0 ? 0xFF : (j % 3 == 0 ? 0x00 : 0xF0));
    }
    const size_t n = nb * 32;
    EXPECT_EQ(k().dot(DType::kQ8_0, w8.data(), x.data(), n),
              ref::vec_dot(DType::kQ8_0, w8.data(), x.data(), n));
    EXPECT_EQ(k().dot(DType::kQ4_0, w4.data(), x.data(), n),
              ref::vec_dot(DType::kQ4_0, w4.data(), x.data(), n));
    // Random int8 with unit scales: still exact.
    std::mt19937 rng(static_cast<uint32_t>(nb));
    std::uniform_int_distribution<int> q(-127, 127), nib(0, 255);
    for (size_t i = 0; i < nb; ++i) {
      for (size_t j = 0; j < 32; ++j) {
        x[i].qs[j] = static_cast<int8_t>(q(rng));
        w8[i].qs[j] = static_cast<int8_t>(q(rng));
      }
      for (size_t j = 0; j < 16; ++j) w4[i].qs[j] = static_cast<uint8_t>(nib(rng));
    }
    EXPECT_EQ(k().dot(DType::kQ8_0, w8.data(), x.data(), n),
              ref::vec_dot(DType::kQ8_0, w8.data(), x.data(), n));
    EXPECT_EQ(k().dot(DType::kQ4_0, w4.data(), x.data(), n),
              ref::vec_dot(DType::kQ4_0, w4.data(), x.data(), n));
  }
}

void expect_same_bytes(const KernelSet& k, DType t, const std::vector<float>& x) {
  std::vector<uint8_t> got(row_bytes(t, x.size()), 0xAB);
  k.quantize_row(t, x.data(), got.data(), x.size());
  EXPECT_EQ(got, ref_quant(t, x)) << dtype_name(t) << " n=" << x.size() << " isa=" << k.name;
}

TEST_P(SimdKernels, ActivationQuantizersGiveReferenceBytes) {
  std::mt19937 rng(99);
  for (DType t : {DType::kQ8_0, DType::kQ8_1, DType::kQ8_K, DType::kF16, DType::kBF16}) {
    const size_t block = traits(t).block_elems == 1 ? 32 : traits(t).block_elems;
    for (size_t nb : kBlockCounts) {
      for (float scale : {1e-3f, 1.0f, 300.0f})
        expect_same_bytes(k(), t, random_row(rng, nb * block, scale));
    }
  }
  // F16 at a length with a scalar tail, with values that round up, to subnormals and to inf.
  std::vector<float> h = random_row(rng, 37, 1.0f);
  h[0] = 1.0f + 1.0f / 2048;  // a tie: rounds to even (1.0)
  h[1] = 1.0f + 3.0f / 2048;  // a tie: rounds to even (up)
  h[2] = 3e-6f;
  h[3] = -7e-8f;
  h[4] = 70000.0f;
  h[5] = -std::numeric_limits<float>::infinity();
  h[6] = 65519.0f;
  expect_same_bytes(k(), DType::kF16, h);
  // BF16: ties both ways, the largest finite (rounds to Inf), Inf, NaNs of both signs, a
  // subnormal; 37 values leave a scalar tail after two vectors of 16.
  std::vector<float> b = random_row(rng, 37, 1.0f);
  b[0] = std::bit_cast<float>(0x3F808000u);  // tie, even below: stays 0x3F80
  b[1] = std::bit_cast<float>(0x3F818000u);  // tie, odd below: rounds up to 0x3F82
  b[2] = std::numeric_limits<float>::max();
  b[3] = -std::numeric_limits<float>::infinity();
  b[4] = std::bit_cast<float>(0x7FC00001u);
  b[5] = std::bit_cast<float>(0xFF800001u);  // signalling NaN: comes out quiet
  b[6] = std::bit_cast<float>(0x00000123u);
  b[20] = std::bit_cast<float>(0xFF818000u);
  expect_same_bytes(k(), DType::kBF16, b);
}

// Blocks that stress the Q8 quantizers: all zero, ties (amax 127 gives d = 1, so k + 0.5 is an
// exact tie that roundf sends away from zero), a sign-flipped max, infinities, NaNs.
TEST_P(SimdKernels, Q8QuantizerEdgeBlocks) {
  std::mt19937 rng(7);
  for (DType t : {DType::kQ8_0, DType::kQ8_1, DType::kQ8_K}) {
    const size_t block = traits(t).block_elems;
    std::vector<float> x(3 * block, 0.0f);  // block 0 all zero
    for (size_t j = 0; j < block; ++j) {
      const float v = float(j % 100) + 0.5f;
      x[block + j] = j % 2 == 0 ? v : -v;
      x[2 * block + j] = float(j) * 0.25f - 3.0f;
    }
    x[block + 7] = 127.0f;
    x[2 * block + 5] = -127.0f;  // the signed max is negative
    x[2 * block + 9] = 127.0f;   // a tie in |x|: the first one wins
    expect_same_bytes(k(), t, x);
  }
  std::vector<float> inf(32, 1.0f);
  inf[3] = std::numeric_limits<float>::infinity();
  expect_same_bytes(k(), DType::kQ8_0, inf);
  std::vector<float> nan = random_row(rng, 64, 1.0f);  // skipped by the max, then -127
  nan[5] = nan[40] = std::numeric_limits<float>::quiet_NaN();
  expect_same_bytes(k(), DType::kQ8_0, nan);
  expect_same_bytes(k(), DType::kQ8_1, inf);
  std::vector<float> inf_k(256, -2.0f);
  inf_k[200] = -std::numeric_limits<float>::infinity();
  expect_same_bytes(k(), DType::kQ8_K, inf_k);
}

INSTANTIATE_TEST_SUITE_P(Isa, SimdKernels, testing::ValuesIn(available_isas()), test::isa_label);

TEST(Dispatch, ActiveIsaIsAvailableAndNamed) {
  const std::vector<Isa> all = available_isas();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), Isa::kScalar);
  bool found = false;
  for (Isa isa : all) found = found || isa_name(isa) == active_isa_name();
  EXPECT_TRUE(found) << active_isa_name();
}

}  // namespace
}  // namespace slm
