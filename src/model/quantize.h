// Converting weight tensors between types (shared by `slm quantize`, `slm convert` and load-time
// quantization): which tensors are matrices to convert, the type each gets, and the conversion
// itself through the reference kernels (bytes identical to ggml's reference quantizers).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"
#include "src/model/synth_plan.h"
#include "src/model/weights.h"

namespace slm::quant {

// True for a weight matrix that a file type converts: 2 or more dims, named *.weight, not the
// MoE router (ffn_gate_inp, kept F32 by llama.cpp).
bool is_weight_matrix(std::string_view name, size_t n_dims);
bool is_float_type(DType type);  // F32, F16, BF16

// A file type of `slm quantize` and `slm convert`: either every matrix in `base`, or
// llama-quantize's rules. The same fields as synth's file types, with their own values (plain types
// put every matrix, token_embd and output too, in the base type, as ggml's reference files do;
// synth follows llama-quantize's rules for them).
using Target = synth::FileType;
const std::vector<Target>& targets();
const Target* find_target(std::string_view name);

// What a file's layout tells the rules: the block count and whether output.weight is absent
// (tied embeddings).
struct ModelShape {
  int32_t n_layer = 0;
  bool tied = false;
};

// The type `target` gives the matrix `name` whose rows hold `cols` elements and are stored as
// `current`. Rows that are not whole blocks: a K-quant's 32-element fallback (Q5_0 / Q5_1 /
// Q8_0) when it fits, else F16 under quantizer rules (as llama-quantize) or `current`.
DType matrix_type(const Target& target, std::string_view name, uint64_t cols, DType current,
                  const ModelShape& shape);

// Converts `n_elements` elements (rows of `cols`) from `from` to `to` into `out`, which holds
// exactly their size in `to`. `from` must be a float type or equal to `to` (then a copy).
void convert(DType from, std::span<const uint8_t> in, uint64_t cols, DType to,
             std::span<uint8_t> out);

// Load-time quantization: converts each F32/F16/BF16 matrix of `w` to `target`'s type (uniform
// targets only) into buffers `w` owns, re-pointing the views (a tied output follows
// token_embd). `on_matrix(matrix, old type, new bytes)` is called after each conversion with the
// matrix as it was. Returns the number of matrices looked at.
using MatrixConverted = std::function<void(const Matrix& before, DType to, uint64_t bytes_before,
                                           uint64_t bytes_after, size_t done, size_t total)>;
void quantize_weights(Weights& w, const Target& target, const MatrixConverted& on_matrix);

}  // namespace slm::quant
