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
void add_avx2_attention(OpsSet& ops);   // kernels/x86/avx2_attention.cpp (called by add_avx2_ops)
// The two steps of a causal attention pass over a block of keys that a set may do wider, each
// for `rows` (1 or 2) query rows of D-element heads, with avx2_attention.cpp's operations
// per element (the same bits):
struct CausalSteps {
  // p[r][0, n) = scale · (q[r] · k_i) for n ≤ 64 keys transposed in chunks of `width` keys
  // (kt[(c · D + d) · width + i]: element d of key c · width + i; 64-byte aligned). p[r] gets
  // whole chunks.
  void (*scores)(const float* const* q, size_t rows, const float* kt, size_t n, size_t D,
                 float scale, float* const* p);
  size_t width;
  // The online softmax's step over one row's n scores p (soft-capped before, where asked): p =
  // e^(p − m_new) for the new running max m_new, l_run = l_run · corr + Σ p; returns corr =
  // e^(m_old − m_new).
  float (*softmax)(float* p, size_t n, float& m_run, float& l_run);
  // out[r] = corr[r] · out[r] + Σ_{j < n[r]} p[r][j] v_j over F32 rows v_j (n[0] ≤ n[1]).
  void (*values)(float* const* out, size_t rows, const float* corr, const float* const* p,
                 const size_t* n, const uint8_t* const* v, size_t D);
};
// OpsSet::attention_causal (kernels/x86/avx2_attention.cpp), with a wider set's steps.
void avx2_attention_causal(const CausalSteps& steps, const float* q, size_t q_stride,
                           size_t n_heads, size_t n_tokens, size_t n_keys0, const ref::KvRows& k,
                           const ref::KvRows& v, bool kv_is_f16, size_t head_dim, float scale,
                           float cap, float* out, size_t out_stride);
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
void add_neon_ops(OpsSet& ops);        // kernels/arm/neon_ops.cpp (called by add_neon_kernels)
void add_neon_attention(OpsSet& ops);  // kernels/arm/neon_attention.cpp (called by add_neon_ops)
#endif

}  // namespace slm::isa
