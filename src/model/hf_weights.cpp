#include "src/model/hf_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstring>

#include "kernels/ref/quant.h"
#include "slm/error.h"

namespace slm {
namespace {

class HfTensorFinder {
 public:
  HfTensorFinder(const SafetensorsCheckpoint& checkpoint, Weights& weights)
      : checkpoint_(checkpoint), weights_(weights) {}

  const SafetensorsTensor& find(const std::string& name) const {
    const SafetensorsTensor* t = checkpoint_.find_tensor(name);
    if (!t) throw FormatError(fmt::format("{}: missing tensor '{}'", checkpoint_.dir(), name));
    return *t;
  }

  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const SafetensorsTensor& t = find(name);
    const DType type = hf_weight_type(t, checkpoint_.file_of(t.name));
    check_shape(t, {uint64_t(rows), uint64_t(cols)});
    return Matrix{t.name, type, aligned(t), rows, cols};
  }

  // A 1-D f32 vector; F16/BF16 are converted once (the copy's buffer keeps its address when
  // `converted` grows, since moving a std::vector keeps its heap block).
  const float* vector(const std::string& name, int64_t n) const {
    const SafetensorsTensor& t = find(name);
    const DType type = hf_weight_type(t, checkpoint_.file_of(t.name));
    check_shape(t, {uint64_t(n)});
    if (type == DType::kF32) return static_cast<const float*>(aligned(t));
    std::vector<float>& out = weights_.converted.emplace_back(size_t(n));
    ref::dequantize_row(type, aligned(t), out.data(), size_t(n));
    return out.data();
  }

 private:
  // The tensor's bytes where its elements can be read in place: safetensors does not promise
  // aligned data (only that the header is JSON), so a misaligned tensor is copied once.
  const void* aligned(const SafetensorsTensor& t) const {
    if (reinterpret_cast<uintptr_t>(t.data) % safetensors_dtype_size(t.type) == 0) return t.data;
    std::vector<float>& copy = weights_.converted.emplace_back((t.n_bytes + 3) / 4);
    std::memcpy(copy.data(), t.data, t.n_bytes);
    return copy.data();
  }

  void check_shape(const SafetensorsTensor& t, const std::vector<uint64_t>& expected) const {
    if (t.shape != expected) {
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]",
                                    checkpoint_.file_of(t.name), t.name, fmt::join(t.shape, ", "),
                                    fmt::join(expected, ", ")));
    }
  }

  const SafetensorsCheckpoint& checkpoint_;
  Weights& weights_;
};

}  // namespace

DType hf_weight_type(const SafetensorsTensor& t, std::string_view file) {
  switch (t.type) {
    case SafetensorsDType::kF32:
      return DType::kF32;
    case SafetensorsDType::kF16:
      return DType::kF16;
    case SafetensorsDType::kBF16:
      return DType::kBF16;
    default:
      throw UnsupportedError(
          fmt::format("{}: tensor '{}' has dtype {}; slm reads F32, F16 and BF16 weights", file,
                      t.name, safetensors_dtype_name(t.type)));
  }
}

Weights load_hf_weights(const SafetensorsCheckpoint& checkpoint, const HfConfig& hf) {
  const ModelConfig& c = hf.model;
  Weights w;
  HfTensorFinder f(checkpoint, w);
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim;
  const int64_t kv_dim = int64_t(c.n_head_kv) * c.head_dim;

  w.token_embd = f.matrix("model.embed_tokens.weight", c.n_vocab, c.n_embd);
  w.output_norm = f.vector("model.norm.weight", c.n_embd);
  // Tied checkpoints may still store lm_head (a copy); transformers uses the embedding then.
  if (hf.tie_word_embeddings) {
    w.output = w.token_embd;
    w.tied_output = true;
  } else {
    w.output = f.matrix("lm_head.weight", c.n_vocab, c.n_embd);
  }
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm = f.vector(p + "input_layernorm.weight", c.n_embd);
    L.wq = f.matrix(p + "self_attn.q_proj.weight", q_dim, c.n_embd);
    L.wk = f.matrix(p + "self_attn.k_proj.weight", kv_dim, c.n_embd);
    L.wv = f.matrix(p + "self_attn.v_proj.weight", kv_dim, c.n_embd);
    L.wo = f.matrix(p + "self_attn.o_proj.weight", c.n_embd, q_dim);
    if (c.qkv_bias) {
      L.bq = f.vector(p + "self_attn.q_proj.bias", q_dim);
      L.bk = f.vector(p + "self_attn.k_proj.bias", kv_dim);
      L.bv = f.vector(p + "self_attn.v_proj.bias", kv_dim);
    }
    if (c.qk_norm) {
      L.q_norm = f.vector(p + "self_attn.q_norm.weight", c.head_dim);
      L.k_norm = f.vector(p + "self_attn.k_norm.weight", c.head_dim);
    }
    L.ffn_norm = f.vector(p + "post_attention_layernorm.weight", c.n_embd);
    L.w_gate = f.matrix(p + "mlp.gate_proj.weight", c.n_ff, c.n_embd);
    L.w_up = f.matrix(p + "mlp.up_proj.weight", c.n_ff, c.n_embd);
    L.w_down = f.matrix(p + "mlp.down_proj.weight", c.n_embd, c.n_ff);
  }
  return w;
}

}  // namespace slm
