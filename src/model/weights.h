// Weights: typed views of a model's tensors. Matrices point into the file mapping (no copy);
// small vectors (norm weights) are converted to f32 once at load when stored otherwise.
// One loader serves every format: it asks a TensorSource for tensors by llama.cpp's GGUF names.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "src/model/config.h"

namespace slm {

// `rows` rows of `cols` elements of `type` (a GGUF tensor [cols, rows]); y = W·x maps cols → rows.
struct Matrix {
  std::string name;
  DType type = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  WeightLayout layout = WeightLayout::kRows;  // kRepackedTiles after repack_for_tiles
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
  // --- Phi-2 / Phi-3 / StarCoder2: optional biases (ModelConfig's flags say which exist).
  // wq/wk/wv (and w_gate/w_up) may be row ranges of one fused tensor (attn_qkv, ffn_up).
  const float* attn_norm_b = nullptr;  // [n_embd] LayerNorm biases
  const float* ffn_norm_b = nullptr;
  const float* bo = nullptr;      // [n_embd] bias of wo
  const float* b_up = nullptr;    // [n_ff] bias of w_up (FfnKind::kGelu)
  const float* b_down = nullptr;  // [n_embd] bias of w_down

  // Mixture of experts (ModelConfig::n_expert > 0) in place of w_gate/w_up/w_down: the router,
  // and one view per expert (a slice of GGUF's stacked 3-D `ffn_*_exps`, or a tensor of its own
  // in Hugging Face checkpoints); the optional shared expert and its [n_embd] → 1 gate.
  Matrix router;                                           // n_expert rows of n_embd
  std::vector<Matrix> expert_gate, expert_up, expert_down;  // gate/up: n_ff_expert rows
  Matrix shared_gate, shared_up, shared_down;              // gate/up: n_ff_shared rows
  Matrix shared_expert_gate;                               // 1 row of n_embd
  // Optional [n_embd] norms of the attention and MLP outputs (ModelConfig::post_norms);
  // attn_norm and ffn_norm are null without pre_norms.
  const float* post_attention_norm = nullptr;
  const float* post_ffw_norm = nullptr;
};

// Every matrix of a layer the forward pass multiplies by: attention, then the dense MLP or the
// router, shared expert and experts (absent ones left out).
std::vector<Matrix*> layer_matrices(LayerWeights& L);
std::vector<const Matrix*> layer_matrices(const LayerWeights& L);

struct Weights {
  Matrix token_embd;  // n_vocab rows of n_embd
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;
  Matrix output;  // n_vocab rows; token_embd when the file has no output.weight (tied)
  bool tied_output = false;
  const float* output_norm_b = nullptr;       // optional (ModelConfig::norm_bias)
  const float* output_b = nullptr;            // optional [n_vocab] (ModelConfig::output_bias)
  std::vector<std::vector<float>> converted;  // f32 copies of vectors stored in other types
  std::vector<std::vector<uint8_t>> quantized;  // matrices converted at load (LoadOptions)
};

// One tensor of a checkpoint, whatever its format.
struct SourceTensor {
  std::string name;  // as the checkpoint names it (for messages)
  std::string file;  // the file holding it (for messages)
  DType type = DType::kF32;
  const void* data = nullptr;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the length of a row
  bool outermost_first = false;  // the checkpoint's own order is dims reversed (PyTorch's)
};

// A checkpoint's tensors looked up by llama.cpp's GGUF names ("blk.3.attn_q.weight"), so the one
// loader below reads GGUF files and Hugging Face directories alike.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // The tensor the GGUF name stands for; nullopt when the checkpoint has none. Throws
  // UnsupportedError for a tensor stored in a type slm cannot compute with.
  virtual std::optional<SourceTensor> find(const std::string& gguf_name) const = 0;
  // "FILE: missing tensor 'NAME'", with the name this format gives the tensor.
  virtual std::string missing(const std::string& gguf_name) const = 0;
};

// Finds every tensor the config needs, checks its shape and type, and builds the views.
// Throws FormatError (missing tensor, wrong shape) or UnsupportedError (type slm cannot compute),
// naming the tensor.
Weights load_weights(const TensorSource& source, const ModelConfig& config);

struct KernelSet;

// Rewrites in place, for the kernel set's tiles (KernelSet::repacked), every layer matrix and the
// output (tied or not) whose type the set repacks and whose rows are whole tiles, where its bytes lie in
// `owned` (memory the caller made writable) or in w.quantized; the rest keep their rows (a
// mapping of the file stays untouched). Returns the bytes rewritten: the same bytes, reordered,
// so no memory is added.
uint64_t repack_for_tiles(Weights& w, const KernelSet& k, std::span<uint8_t> owned);

// Every tensor load_weights reads, in the order it reads them, by GGUF name (what a converter
// writes).
std::vector<std::pair<std::string, SourceTensor>> list_weights(const TensorSource& source,
                                                               const ModelConfig& config);

class GgufFile;

// A GGUF file's tensors: names as they are, data in the file's mapping.
class GgufTensorSource final : public TensorSource {
 public:
  explicit GgufTensorSource(const GgufFile& file) : file_(file) {}
  std::optional<SourceTensor> find(const std::string& gguf_name) const override;
  std::string missing(const std::string& gguf_name) const override;

 private:
  const GgufFile& file_;
};

}  // namespace slm
