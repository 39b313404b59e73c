// aarch64 only: NEON is always available and chosen by default; the dotprod kernels are
// registered exactly when HWCAP says so; the legacy block types that the shared SIMD test
// does not cover (Q4_1, Q5_0, Q5_1: the 5th-bit unpacking and the min term; the Q8_1 quantizer)
// match the reference; and the K-quant dots equal it exactly.
// SLM_EXPECT_DOTPROD=0|1 (set by the qemu test runs in tests/CMakeLists.txt) states what the
// emulated CPU has, so a run that silently lost the sdot path, or took it without the CPU
// having it, fails here. The qemu runs with and without dotprod test both kernel variants.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dispatch.h"

#if defined(__aarch64__)
#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"

namespace slm {
namespace {

constexpr uint16_t kFp16One = 0x3C00;
constexpr uint16_t kFp16Three = 0x4200;
constexpr size_t kBlockCounts[] = {1, 3, 7, 8, 9, 16, 33};

const KernelSet& neon() { return kernel_set(Isa::kNeon); }

TEST(NeonDispatch, NeonIsAvailable) {
  const std::vector<Isa> all = available_isas();
  EXPECT_NE(std::find(all.begin(), all.end(), Isa::kNeon), all.end());
  EXPECT_EQ(all.back(), Isa::kNeon);  // the default set
}

TEST(NeonDispatch, DotprodMatchesTheEmulatedCpu) {
  const char* expect = std::getenv("SLM_EXPECT_DOTPROD");
  if (expect == nullptr || *expect == '\0') GTEST_SKIP() << "SLM_EXPECT_DOTPROD not set";
  EXPECT_EQ(isa::cpu_has_neon_dotprod(), *expect == '1');
}

// Random quants and 5th bits with integer scales and mins: every block term and partial sum is
// an exact integer, so the NEON result equals the reference's.
template <typename W, typename X>
void expect_exact(DType wt, bool with_min) {
  std::mt19937 rng(static_cast<uint32_t>(wt) + 7);
  std::uniform_int_distribution<int> byte(0, 255), q8(-127, 127);
  for (size_t nb : kBlockCounts) {
    std::vector<W> w(nb);
    std::vector<X> x(nb);
    for (size_t i = 0; i < nb; ++i) {
      auto* raw = reinterpret_cast<uint8_t*>(&w[i]);
      for (size_t j = 0; j < sizeof(W); ++j) raw[j] = static_cast<uint8_t>(byte(rng));
      w[i].d = kFp16One;
      x[i].d = kFp16One;
      for (int8_t& q : x[i].qs) q = static_cast<int8_t>(q8(rng));
      if constexpr (sizeof(X) == sizeof(BlockQ8_1)) x[i].s = kFp16Three;
      if (with_min) {
        if constexpr (requires { w[i].m; }) w[i].m = i % 2 == 0 ? kFp16One : kFp16Three;
      }
    }
    const size_t n = nb * 32;
    EXPECT_EQ(neon().dot(wt, w.data(), x.data(), n), ref::vec_dot(wt, w.data(), x.data(), n))
        << dtype_name(wt) << " blocks=" << nb;
  }
}

TEST(NeonKernels, LegacyDotsAreExactOnIntegerScales) {
  expect_exact<BlockQ4_0, BlockQ8_0>(DType::kQ4_0, false);
  expect_exact<BlockQ8_0, BlockQ8_0>(DType::kQ8_0, false);
  expect_exact<BlockQ5_0, BlockQ8_0>(DType::kQ5_0, false);
  expect_exact<BlockQ4_1, BlockQ8_1>(DType::kQ4_1, true);
  expect_exact<BlockQ5_1, BlockQ8_1>(DType::kQ5_1, true);
}

// Reference-quantized random rows: the block terms are identical, only their order differs, so
// the results agree to float rounding of sum |w_i x_i|.
TEST(NeonKernels, LegacyDotsMatchReferenceOnRandomRows) {
  std::mt19937 rng(4321);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType wt : {DType::kQ4_1, DType::kQ5_0, DType::kQ5_1}) {
    const DType xt = ref::vec_dot_type(wt);
    for (size_t nb : kBlockCounts) {
      const size_t n = nb * 32;
      std::vector<float> wf(n), xf(n);
      for (float& v : wf) v = 0.5f * nd(rng);
      for (float& v : xf) v = 2.0f * nd(rng);
      std::vector<uint8_t> w(row_bytes(wt, n)), x(row_bytes(xt, n));
      ref::quantize_row(wt, wf.data(), w.data(), n);
      ref::quantize_row(xt, xf.data(), x.data(), n);
      ref::dequantize_row(wt, w.data(), wf.data(), n);
      ref::dequantize_row(xt, x.data(), xf.data(), n);
      double scale = 0;
      for (size_t i = 0; i < n; ++i) scale += std::fabs(double(wf[i]) * double(xf[i]));
      EXPECT_NEAR(neon().dot(wt, w.data(), x.data(), n), ref::vec_dot(wt, w.data(), x.data(), n),
                  1e-6 * scale + 1e-30)
          << dtype_name(wt) << " blocks=" << nb;
    }
  }
}

// The K-quant dots add their super-block terms one by one in the reference's order (their integer
// sums exact, their terms formed with its float operations), so whole rows equal the reference's
// bit for bit; extreme blocks are in simd_kquant_test.cpp.
TEST(NeonKernels, KQuantDotsEqualReferenceOnRandomRows) {
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType wt : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    ASSERT_NE(neon().vec_dot[static_cast<size_t>(wt)], nullptr) << dtype_name(wt);
    for (size_t nb : {size_t{1}, size_t{3}, size_t{9}}) {
      const size_t n = nb * kQK_K;
      std::vector<float> wf(n), xf(n);
      for (float& v : wf) v = 0.5f * nd(rng);
      for (float& v : xf) v = 2.0f * nd(rng);
      std::vector<uint8_t> w(row_bytes(wt, n)), x(row_bytes(DType::kQ8_K, n));
      ref::quantize_row(wt, wf.data(), w.data(), n);
      ref::quantize_row(DType::kQ8_K, xf.data(), x.data(), n);
      EXPECT_EQ(neon().dot(wt, w.data(), x.data(), n), ref::vec_dot(wt, w.data(), x.data(), n))
          << dtype_name(wt) << " super-blocks=" << nb;
    }
  }
}

// Q8_1 (not covered by the shared SIMD test): random rows at several scales, ties, an Inf.
TEST(NeonKernels, Q8_1QuantizerGivesReferenceBytes) {
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> rows;
  for (size_t nb : kBlockCounts) {
    for (float scale : {1e-3f, 1.0f, 300.0f}) {
      std::vector<float> x(nb * 32);
      for (float& v : x) v = scale * nd(rng);
      rows.push_back(x);
    }
  }
  std::vector<float> edge(3 * 32, 0.0f);  // block 0 all zero
  for (size_t j = 0; j < 32; ++j) edge[32 + j] = (j % 2 == 0 ? 1.0f : -1.0f) * (float(j) + 0.5f);
  edge[32 + 3] = 127.0f;  // amax 127: d = 1, so the k + 0.5 values are exact ties
  for (size_t j = 0; j < 32; ++j) edge[64 + j] = float(j);
  edge[64 + 5] = std::numeric_limits<float>::infinity();
  rows.push_back(edge);
  for (const std::vector<float>& x : rows) {
    std::vector<uint8_t> got(row_bytes(DType::kQ8_1, x.size()), 0xAB);
    std::vector<uint8_t> want(got.size());
    neon().quantize_row(DType::kQ8_1, x.data(), got.data(), x.size());
    ref::quantize_row(DType::kQ8_1, x.data(), want.data(), x.size());
    EXPECT_EQ(got, want) << "n=" << x.size();
  }
}

}  // namespace
}  // namespace slm
#endif
