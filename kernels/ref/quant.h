// Scalar reference kernels for every weight type: the ground truth that SIMD kernels are tested
// against. Block layouts are bit-compatible with ggml (see kernels/dtype.h for the sizes).
//
// Matmuls with a weight type W work like ggml's: the activation row is first converted to
// vec_dot_type(W) (Q8_0 blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K blocks for K-quants, F16 for
// F16, F32 for F32 and BF16), then each weight row is dotted with it, accumulating integer
// products per block in int32 and applying the block scales once per block. BF16 differs from
// ggml (which rounds activations to BF16): it keeps them F32, as transformers does.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

namespace slm {

// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

constexpr size_t kQK4_0 = 32;
constexpr size_t kQK8_0 = 32;
constexpr size_t kQK_K = 256;

struct BlockQ4_0 {
  uint16_t d;               // fp16 scale
  uint8_t qs[kQK4_0 / 2];   // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of each group of 16 quants
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_K) == 292);

namespace ref {

// True when the reference kernels can dequantize / dot this type.
bool supports(DType type);
// True when quantize_row() can produce this type.
bool can_quantize(DType type);

// The type an activation row is converted to before a dot with weights of `weight_type`.
DType vec_dot_type(DType weight_type);

// dst[0..n) = the values of n elements stored as `type`. n is a multiple of the block size.
void dequantize_row(DType type, const void* src, float* dst, size_t n);
// Reference quantizer: bytes identical to ggml's reference (quantize_row_*_ref) for Q8_0, Q4_0
// and the others it supports; F16/BF16/F32 convert.
void quantize_row(DType type, const float* src, void* dst, size_t n);

// Dot product of one weight row (n elements of `weight_type`) with one activation row already
// converted to vec_dot_type(weight_type).
float vec_dot(DType weight_type, const void* w_row, const void* x_row, size_t n);

}  // namespace ref
}  // namespace slm
