// The AVX2 set's Q4_K and Q6_K repacked tiles (kquant_columns.h, compiled with the AVX2 flags).
#include "kernels/x86/kquant_columns.h"

namespace slm::isa {

void add_avx2_kquant_repacking(KernelSet& k) {
  k.repacked[static_cast<size_t>(DType::kQ4_K)] = kKQuantRepacking<Q4K>;
  k.repacked[static_cast<size_t>(DType::kQ6_K)] = kKQuantRepacking<Q6K>;
}

}  // namespace slm::isa
