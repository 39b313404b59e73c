// Weights: typed views of a model's tensors. Matrices point into the file mapping (no copy);
// small vectors (norm weights) are converted to f32 once at load when stored otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "src/model/config.h"

namespace slm {

class GgufFile;

// `rows` rows of `cols` elements of `type` (a GGUF tensor [cols, rows]); y = W·x maps cols → rows.
struct Matrix {
  std::string name;
  DType type = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  Matrix wq, wk, wv, wo;             // q: n_head·head_dim rows, k/v: n_head_kv·head_dim rows
  const float* bq = nullptr;         // optional biases of wq, wk, wv (ModelConfig::qkv_bias)
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* q_norm = nullptr;  // optional [head_dim] per-head norms (ModelConfig::qk_norm)
  const float* k_norm = nullptr;
  const float* ffn_norm = nullptr;  // [n_embd]
  Matrix w_gate, w_up, w_down;      // gate/up: n_ff rows, down: n_embd rows
};

struct Weights {
  Matrix token_embd;  // n_vocab rows of n_embd
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;
  Matrix output;  // n_vocab rows; token_embd when the file has no output.weight (tied)
  bool tied_output = false;
  std::vector<std::vector<float>> converted;  // f32 copies of vectors stored in other types
  std::vector<std::vector<uint8_t>> quantized;  // matrices converted at load (LoadOptions)
};

// Finds every tensor the config needs, checks its shape and type, and builds the views.
// Throws FormatError (missing tensor, wrong shape) or UnsupportedError (type slm cannot compute),
// naming the tensor.
Weights load_weights(const GgufFile& file, const ModelConfig& config);

}  // namespace slm
