// Helpers shared by the kernel tests (simd_*_test.cpp), which run once per ISA this machine has.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/ops.h"
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

// A contiguous buffer of n_rows K or V rows (`stride` bytes apart) copied into pages of page_rows
// rows placed in a shuffled order, as a paged cache holds them: attention over view(...) must
// give the same bits as over the contiguous buffer (paging changes where rows are, not what is
// computed).
struct ShuffledPages {
  size_t page_rows, stride;
  std::vector<uint8_t> store;
  std::vector<const uint8_t*> pages;

  ShuffledPages(const uint8_t* rows, size_t n_rows, size_t stride, size_t page_rows,
                std::mt19937& rng)
      : page_rows(page_rows), stride(stride) {
    const size_t n_pages = (n_rows + page_rows - 1) / page_rows, page_bytes = page_rows * stride;
    std::vector<size_t> slot(n_pages);
    std::iota(slot.begin(), slot.end(), size_t{0});
    std::shuffle(slot.begin(), slot.end(), rng);
    store.resize(n_pages * page_bytes);
    for (size_t p = 0; p < n_pages; ++p) {
      pages.push_back(&store[slot[p] * page_bytes]);
      const size_t bytes = std::min(page_rows, n_rows - p * page_rows) * stride;
      std::memcpy(&store[slot[p] * page_bytes], rows + p * page_bytes, bytes);
    }
  }
  ref::KvRows view(size_t offset, size_t first) const {
    return {pages.data(), page_rows, stride, offset, first};
  }
};

}  // namespace test
}  // namespace slm
