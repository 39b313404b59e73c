// Quantizing a model file (`slm quantize`): reads a GGUF file with F32/F16/BF16 weights and
// writes a copy whose weight matrices are in a block type, with the same metadata
// (general.file_type updated) and the same tensor order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slm {

// The types quantize_model_file() accepts, in a fixed order: "f32", "f16", "bf16", "q8_0",
// "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" put every weight matrix (token_embd
// and output included) in that type; "q4_k_m" and "q5_k_m" follow llama-quantize's per-tensor
// rules (output in Q6_K, some attn_v / ffn_down layers in Q6_K).
std::vector<std::string> quantize_types();

struct QuantizeOptions {
  std::string type;  // a name from quantize_types()
  // Called before each tensor is written, with its index, the tensor count and its name.
  std::function<void(size_t index, size_t count, const std::string& name)> on_tensor = nullptr;
};

struct QuantizeResult {
  uint64_t bytes_in = 0;   // input file size
  uint64_t bytes_out = 0;  // output file size
  size_t converted = 0;    // matrices written in the requested type
  size_t unchanged = 0;    // tensors copied as they were (norms, biases, other 1-D tensors)
  // Matrices whose rows are not whole blocks of the type, each as "name: type (why)" with the
  // type it got instead (a K-quant's 32-element fallback like llama.cpp's, else the input's own
  // type; for q4_k_m / q5_k_m F16, as llama-quantize does).
  std::vector<std::string> fallbacks;
};

// Writes `out` (atomically: OUT.tmp, then renamed). Matrices are the tensors of 2 or more
// dimensions named *.weight (not the MoE router ffn_gate_inp, kept F32 like llama.cpp does).
// Throws InvalidArgumentError for an unknown type, IoError / FormatError for an unreadable
// input, and UnsupportedError when a matrix is already quantized to another type than the one
// it would get (requantizing adds a second rounding error: start from the F32/F16/BF16 file);
// a matrix already in its target type is copied unchanged.
QuantizeResult quantize_model_file(const std::string& in, const std::string& out,
                                   const QuantizeOptions& options);

}  // namespace slm
