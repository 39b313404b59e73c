// The AVX-512 set's Q4_K and Q6_K repacked tiles: kquant_columns.h compiled with the AVX-512
// flags, so a group's integer sums come from vpdpbusd. GCC 12's AVX-512 headers trip its
// uninitialized-use analysis (see avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/x86/kquant_columns.h"

static_assert(SLM_KQUANT_VNNI, "compiled with the AVX-512 VNNI flags");

namespace slm::isa {

void add_avx512_kquant_repacking(KernelSet& k) {
  k.repacked[static_cast<size_t>(DType::kQ4_K)] = kKQuantRepacking<Q4K>;
  k.repacked[static_cast<size_t>(DType::kQ6_K)] = kKQuantRepacking<Q6K>;
}

}  // namespace slm::isa
