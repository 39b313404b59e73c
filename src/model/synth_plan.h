// The plan of a synthetic model (`slm synth`): a real model's hyper-parameters (from its
// Hugging Face config.json), the GGUF tensors llama.cpp's converter would write for it, and the
// type llama.cpp's quantizer (llama-quantize) would give each tensor for a file type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"

namespace slm::synth {

enum class Arch {
  kLlama,   // RMSNorm, SwiGLU, no biases
  kQwen2,   // llama + q/k/v biases
  kPhi2,    // LayerNorm with biases, parallel attention + GELU MLP, partial RoPE, biases
  kGemma2,  // RMSNorm before and after each block, GeGLU, soft-capped scores and logits,
            // a sliding window on every other layer
};

struct Shape {
  std::string_view name;
  std::string_view source;  // Hugging Face model id
  Arch arch;
  int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
  int32_t head_dim;  // 0: n_embd / n_head (Gemma 2's heads are wider)
  int32_t n_rot;     // rotated dims per head (phi-2: partial_rotary_factor 0.4 of 80)
  float rope_theta;
  float norm_eps;
  bool tied_embeddings;
};

// Elements per attention head: the preset's head_dim, or n_embd / n_head.
inline int32_t head_dim(const Shape& s) {
  return s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
}

std::string_view arch_name(Arch arch);  // GGUF general.architecture
const std::vector<Shape>& shapes();
const Shape* find_shape(std::string_view name);

// A file type: the type of most matrices and the rule for the others.
struct FileType {
  std::string_view name;  // "q4_k_m"
  uint32_t ftype;         // llama.cpp's llama_ftype, written as general.file_type
  DType base;             // most 2-D weights
  bool quantizer_rules;   // llama-quantize's per-tensor choices (false: convert_hf_to_gguf's)
  bool more_bits;         // the _M rule: some attn_v / ffn_down layers in Q6_K
};
const std::vector<FileType>& file_types();
const FileType* find_file_type(std::string_view name);
// llama.cpp's fallback for a K-quant whose rows are not whole 256-element super-blocks
// (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0); other types are returned unchanged.
DType k_quant_fallback(DType type);
// The entry of `table` called `name`, or null.
const FileType* find_by_name(const std::vector<FileType>& table, std::string_view name);

enum class Role { kTokenEmbd, kOutput, kAttnV, kFfnDown, kMatrix, kNormWeight, kNormBias, kBias };

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the row length
  Role role;
  int32_t layer;  // -1 outside the blocks
  DType type;
};

// Every tensor of the model with `n_layer` blocks, in file order, with its type for `ft`.
std::vector<TensorPlan> plan_tensors(const Shape& shape, const FileType& ft);

// llama-quantize's choice for one tensor (llama_tensor_get_type, for the types above): the
// output matrix (or the tied embedding) in Q6_K unless the base is Q8_0; attn_v / ffn_down of
// use_more_bits layers in Q6_K for _M types; K-quants whose rows are not a multiple of 256 fall
// back to Q5_0 / Q5_1 / Q8_0.
DType quantizer_type(const FileType& ft, Role role, int32_t layer, int32_t n_layer, uint64_t cols,
                     bool tied);

}  // namespace slm::synth
