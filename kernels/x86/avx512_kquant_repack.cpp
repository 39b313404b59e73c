// The AVX-512 set's Q4_K and Q6_K repacked tiles: kquant_columns.h compiled with the AVX-512
// flags, so a group's integer sums come from vpdpbusd.
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on
#include "kernels/x86/kquant_columns.h"

static_assert(SLM_KQUANT_VNNI, "compiled with the AVX-512 VNNI flags");

namespace slm::isa {

void add_avx512_kquant_repacking(KernelSet& k) {
  k.repacked[static_cast<size_t>(DType::kQ4_K)] = kKQuantRepacking<Q4K>;
  k.repacked[static_cast<size_t>(DType::kQ6_K)] = kKQuantRepacking<Q6K>;
}

}  // namespace slm::isa
