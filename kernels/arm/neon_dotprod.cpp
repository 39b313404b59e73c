// ARMv8.2 dot product kernels (compiled with -march=armv8.2-a+dotprod; dispatch.cpp registers
// them over the baseline NEON set only when HWCAP reports ASIMDDP). sdot sums four int8 x int8
// products into each int32 lane exactly, so the block sums equal vmull_s8's and the reference's;
// the block terms and their order are those of kernels/arm/neon_blocks.h.
#include <arm_neon.h>

#include "kernels/arm/neon_blocks.h"
#include "kernels/arm/neon_kquant.h"
#include "kernels/isa_kernels.h"

namespace slm::isa {
namespace {

int32x4_t dot_sdot(I8x32 w, I8x32 x) {
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w.lo, x.lo), w.hi, x.hi);
}

int32x4_t dot16_sdot(int8x16_t w, int8x16_t x) { return vdotq_s32(vdupq_n_s32(0), w, x); }

}  // namespace

void add_neon_dotprod_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kQ8_0)] = dot_blocks<PairQ8_0, dot_sdot>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_0)] = dot_blocks<PairQ4_0, dot_sdot>;
  k.vec_dot[static_cast<size_t>(DType::kQ4_1)] = dot_blocks<PairQ4_1, dot_sdot>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_0)] = dot_blocks<PairQ5_0, dot_sdot>;
  k.vec_dot[static_cast<size_t>(DType::kQ5_1)] = dot_blocks<PairQ5_1, dot_sdot>;
  add_neon_kquant_kernels<dot16_sdot>(k);
  k.gemm_tile[static_cast<size_t>(DType::kQ8_0)] = tile_q8_0<PairQ8_0, dot_sdot>;
  k.gemm_tile[static_cast<size_t>(DType::kQ4_0)] = tile_q8_0<PairQ4_0, dot_sdot>;
  k.gemm_tile[static_cast<size_t>(DType::kQ5_0)] = tile_q8_0<PairQ5_0, dot_sdot>;
}

}  // namespace slm::isa
