// Internal to kernels/: each ISA's translation unit (compiled with that ISA's flags) registers
// its kernels into a KernelSet. Only dispatch.cpp calls these, and only after checking that the
// CPU supports the ISA, so no other code path ever executes an instruction the CPU lacks.
#pragma once

#include "kernels/dispatch.h"

namespace slm::isa {

#if defined(__x86_64__) || defined(_M_X64)
void add_avx2_kernels(KernelSet& k);    // kernels/x86/avx2.cpp: AVX2 + FMA + F16C
void add_avx512_kernels(KernelSet& k);  // kernels/x86/avx512.cpp: AVX-512 F/BW/VL + VNNI + F16C
void add_avx2_ops(OpsSet& ops);         // kernels/x86/avx2_ops.cpp (called by add_avx2_kernels)
// kernels/x86/avx2_kquant.cpp: K-quant dots (called by add_avx2_kernels).
void add_avx2_kquant_kernels(KernelSet& k);
// kernels/x86/avx2_gemm.cpp: prefill GEMM tiles (called by add_avx2_kernels).
void add_avx2_gemm_tiles(KernelSet& k);
// kernels/x86/avx2_kquant_gemm.cpp: K-quant prefill tiles (called by add_avx2_kernels).
void add_avx2_kquant_tiles(KernelSet& k);
void add_avx2_kquant_repacking(KernelSet& k);  // kernels/x86/avx2_kquant_repack.cpp: Q4_K, Q6_K
void add_avx512_ops(OpsSet& ops);       // kernels/x86/avx512_ops.cpp (called by add_avx512_kernels)
// kernels/x86/avx512_gemm.cpp: VNNI tiles over repacked Q8_0, Q4_0, Q5_0 (add_avx512_kernels).
void add_avx512_repacking(KernelSet& k);
// kernels/x86/avx512_kquant_repack.cpp: the Q4_K, Q6_K repacked tiles with VNNI (the same).
void add_avx512_kquant_repacking(KernelSet& k);
// kernels/x86/avx2_float.cpp, avx512_float.cpp: F16 and BF16 dots and tiles summed in F32
// (float_tiles.h; called by add_avx2_kernels, add_avx512_kernels).
void add_avx2_float_kernels(KernelSet& k);
void add_avx512_float_kernels(KernelSet& k);
#endif
#if defined(__aarch64__)
void add_neon_kernels(KernelSet& k);  // kernels/arm/neon.cpp: baseline ASIMD
// kernels/arm/neon_dotprod.cpp: sdot dots over the baseline set; only when cpu_has_neon_dotprod().
void add_neon_dotprod_kernels(KernelSet& k);
bool cpu_has_neon_dotprod();  // HWCAP_ASIMDDP (kernels/arm/neon.cpp)
void add_neon_ops(OpsSet& ops);  // kernels/arm/neon_attention.cpp (called by add_neon_kernels)
#endif

}  // namespace slm::isa
