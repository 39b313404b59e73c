// The x86 sets' packed Q8_0 activations (KernelSet::pack[Q8_0], written by avx2_gemm.cpp's
// pack_q8_0 and read by the AVX2 and AVX-512 tiles). A row's full groups of 8 blocks come first,
// each group kPackedGroupBytes: the 8 blocks' 32 quant bytes interleaved (interleave8 in
// avx2_gemm.cpp), then their 8 scales as floats, then their 8 sums of quants as int32; the blocks
// after the last full group follow as plain BlockQ8_0, then their sums of quants as int32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"

namespace slm::isa {
namespace {

// Where, in a packed group, quant bytes 4m .. 4m + 3 of block j lie: 32-byte vector
// 4 (j / 4) + m % 4, its low 16 bytes for m < 4 and its high 16 for m >= 4, lane j % 4.
constexpr size_t packed_dword_at(size_t j, size_t m) {
  return 32 * (4 * (j / 4) + m % 4) + 16 * (m / 4) + 4 * (j % 4);
}

}  // namespace
}  // namespace slm::isa
