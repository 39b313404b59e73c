// Internal to kernels/: each ISA's translation unit (compiled with that ISA's flags) registers
// its kernels into a KernelSet. Only dispatch.cpp calls these, and only after checking that the
// CPU supports the ISA, so no other code path ever executes an instruction the CPU lacks.
#pragma once

#include "kernels/dispatch.h"

namespace slm::isa {

#if defined(__x86_64__) || defined(_M_X64)
void add_avx2_kernels(KernelSet& k);    // kernels/x86/avx2.cpp: AVX2 + FMA + F16C
void add_avx512_kernels(KernelSet& k);  // kernels/x86/avx512.cpp: AVX-512 F/BW/VL + VNNI + F16C
#endif
#if defined(__aarch64__)
void add_neon_kernels(KernelSet& k);  // kernels/arm/neon.cpp: ASIMD (+ dotprod when present)
#endif

}  // namespace slm::isa
