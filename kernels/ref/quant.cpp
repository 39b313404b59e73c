// DType dispatch of the reference kernels, plus the float types (F32, F16, BF16) themselves.
// Unsupported types are reported by supports()/can_quantize(); the row functions do nothing for
// them (they never throw: callers check supports() first).
#include "kernels/ref/quant.h"

#include <cstring>

#include "kernels/ref/quant_impl.h"

namespace slm::ref {
namespace {

using DequantizeFn = void (*)(const void*, float*, size_t);
using QuantizeFn = void (*)(const float*, void*, size_t);
using DotFn = float (*)(const void*, const void*, size_t);

// ---- float types ----

void dequantize_f32(const void* src, float* dst, size_t n) { std::memcpy(dst, src, n * 4); }
void dequantize_f16(const void* src, float* dst, size_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}
void dequantize_bf16(const void* src, float* dst, size_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}
void quantize_f32(const float* src, void* dst, size_t n) { std::memcpy(dst, src, n * 4); }
void quantize_f16(const float* src, void* dst, size_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (size_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}
void quantize_bf16(const float* src, void* dst, size_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (size_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}

// Float dots accumulate in double (as ggml's scalar path does): sum_i w_i x_i.
float dot_f32(const void* w, const void* x, size_t n) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}
float dot_f16(const void* w, const void* x, size_t n) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    sum += static_cast<double>(fp16_to_fp32(a[i])) * static_cast<double>(fp16_to_fp32(b[i]));
  }
  return static_cast<float>(sum);
}
// BF16 weights dot F32 activations: transformers keeps activations wide, and rounding them to
// BF16 too (as ggml does) costs up to 2^-9 relative per element, which adds up over a model.
float dot_bf16_f32(const void* w, const void* x, size_t n) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const float*>(x);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    sum += static_cast<double>(bf16_to_fp32(a[i])) * static_cast<double>(b[i]);
  }
  return static_cast<float>(sum);
}

struct Kernels {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;  // null: no reference quantizer for this type (yet)
  DotFn dot = nullptr;            // dot with a row of vec_dot_type
  DType vec_dot_type = DType::kF32;
};

Kernels kernels_for(DType type) {
  using namespace detail;
  // clang-format off
  switch (type) {
    case DType::kF32: return {dequantize_f32, quantize_f32, dot_f32, DType::kF32};
    case DType::kF16: return {dequantize_f16, quantize_f16, dot_f16, DType::kF16};
    case DType::kBF16: return {dequantize_bf16, quantize_bf16, dot_bf16_f32, DType::kF32};
    case DType::kQ4_0: return {dequantize_q4_0, quantize_q4_0, dot_q4_0_q8_0, DType::kQ8_0};
    case DType::kQ4_1: return {dequantize_q4_1, quantize_q4_1, dot_q4_1_q8_1, DType::kQ8_1};
    case DType::kQ5_0: return {dequantize_q5_0, quantize_q5_0, dot_q5_0_q8_0, DType::kQ8_0};
    case DType::kQ5_1: return {dequantize_q5_1, quantize_q5_1, dot_q5_1_q8_1, DType::kQ8_1};
    case DType::kQ8_0: return {dequantize_q8_0, quantize_q8_0, dot_q8_0_q8_0, DType::kQ8_0};
    case DType::kQ8_1: return {dequantize_q8_1, quantize_q8_1, dot_q8_1_q8_1, DType::kQ8_1};
    case DType::kQ2_K: return {dequantize_q2_k, quantize_q2_k, dot_q2_k_q8_k, DType::kQ8_K};
    case DType::kQ3_K: return {dequantize_q3_k, quantize_q3_k, dot_q3_k_q8_k, DType::kQ8_K};
    case DType::kQ4_K: return {dequantize_q4_k, quantize_q4_k, dot_q4_k_q8_k, DType::kQ8_K};
    case DType::kQ5_K: return {dequantize_q5_k, quantize_q5_k, dot_q5_k_q8_k, DType::kQ8_K};
    case DType::kQ6_K: return {dequantize_q6_k, quantize_q6_k, dot_q6_k_q8_k, DType::kQ8_K};
    case DType::kQ8_K: return {dequantize_q8_k, quantize_q8_k, dot_q8_k_q8_k, DType::kQ8_K};
    default: return {};
  }
  // clang-format on
}

}  // namespace

bool supports(DType type) { return kernels_for(type).dequantize != nullptr; }

bool can_quantize(DType type) { return kernels_for(type).quantize != nullptr; }

DType vec_dot_type(DType weight_type) { return kernels_for(weight_type).vec_dot_type; }

void dequantize_row(DType type, const void* src, float* dst, size_t n) {
  if (const DequantizeFn f = kernels_for(type).dequantize) f(src, dst, n);
}

void quantize_row(DType type, const float* src, void* dst, size_t n) {
  if (const QuantizeFn f = kernels_for(type).quantize) f(src, dst, n);
}

float vec_dot(DType weight_type, const void* w_row, const void* x_row, size_t n) {
  const DotFn f = kernels_for(weight_type).dot;
  return f != nullptr ? f(w_row, x_row, n) : 0.0f;
}

}  // namespace slm::ref
