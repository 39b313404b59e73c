// Per-type reference kernels behind the DType dispatch in quant.cpp. Internal to kernels/ref:
// other code calls slm::ref::dequantize_row / quantize_row / vec_dot.
// n is always a multiple of the type's block size (the dispatcher's caller guarantees it).
#pragma once

#include <cstddef>

namespace slm::ref::detail {

// Legacy 32-element blocks (quant_legacy.cpp).
void dequantize_q4_0(const void* src, float* dst, size_t n);
void dequantize_q4_1(const void* src, float* dst, size_t n);
void dequantize_q5_0(const void* src, float* dst, size_t n);
void dequantize_q5_1(const void* src, float* dst, size_t n);
void dequantize_q8_0(const void* src, float* dst, size_t n);
void dequantize_q8_1(const void* src, float* dst, size_t n);
void quantize_q4_0(const float* src, void* dst, size_t n);
void quantize_q4_1(const float* src, void* dst, size_t n);
void quantize_q5_0(const float* src, void* dst, size_t n);
void quantize_q5_1(const float* src, void* dst, size_t n);
void quantize_q8_0(const float* src, void* dst, size_t n);
void quantize_q8_1(const float* src, void* dst, size_t n);
float dot_q4_0_q8_0(const void* w, const void* x, size_t n);
float dot_q4_1_q8_1(const void* w, const void* x, size_t n);
float dot_q5_0_q8_0(const void* w, const void* x, size_t n);
float dot_q5_1_q8_1(const void* w, const void* x, size_t n);
float dot_q8_0_q8_0(const void* w, const void* x, size_t n);
float dot_q8_1_q8_1(const void* w, const void* x, size_t n);

// K-quants, 256-element super-blocks (quant_k.cpp).
void dequantize_q2_k(const void* src, float* dst, size_t n);
void dequantize_q3_k(const void* src, float* dst, size_t n);
void dequantize_q4_k(const void* src, float* dst, size_t n);
void dequantize_q5_k(const void* src, float* dst, size_t n);
void dequantize_q6_k(const void* src, float* dst, size_t n);
void dequantize_q8_k(const void* src, float* dst, size_t n);
void quantize_q8_k(const float* src, void* dst, size_t n);
// ggml quantize_row_qX_K_ref (quant_k_quantize.cpp).
void quantize_q2_k(const float* src, void* dst, size_t n);
void quantize_q3_k(const float* src, void* dst, size_t n);
void quantize_q4_k(const float* src, void* dst, size_t n);
void quantize_q5_k(const float* src, void* dst, size_t n);
void quantize_q6_k(const float* src, void* dst, size_t n);
float dot_q2_k_q8_k(const void* w, const void* x, size_t n);
float dot_q3_k_q8_k(const void* w, const void* x, size_t n);
float dot_q4_k_q8_k(const void* w, const void* x, size_t n);
float dot_q5_k_q8_k(const void* w, const void* x, size_t n);
float dot_q6_k_q8_k(const void* w, const void* x, size_t n);
float dot_q8_k_q8_k(const void* w, const void* x, size_t n);

// ggml's nearest_int: round half to even via the 1.5*2^23 trick, valid for |x| <= 2^22. The
// K-quant quantizers depend on exactly this rounding (std::nearbyint would agree only in the
// default rounding mode).
int nearest_int(float x);

}  // namespace slm::ref::detail
