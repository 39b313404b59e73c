// Helpers shared by the kernel tests (simd_*_test.cpp), which run once per ISA this machine has.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/quant.h"

namespace slm {

// Found by ADL, so gtest prints an ISA by name.
inline void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }

namespace test {

// Names the instances of a test parameterized over available_isas(): Suite.Test/avx2.
inline std::string isa_label(const testing::TestParamInfo<Isa>& info) {
  return std::string(isa_name(info.param));
}

// sum_i |w_i x_i| of the dequantized rows: the scale of a dot's rounding error (summing the same
// terms in another order moves the result by up to ~1e-7 of it).
inline double abs_dot(DType wt, const void* w, const void* x, size_t n) {
  std::vector<float> a(n), b(n);
  ref::dequantize_row(wt, w, a.data(), n);
  ref::dequantize_row(ref::vec_dot_type(wt), x, b.data(), n);
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += std::fabs(double(a[i]) * double(b[i]));
  return s;
}

}  // namespace test
}  // namespace slm
