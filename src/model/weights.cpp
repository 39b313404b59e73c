#include "src/model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/ref/quant.h"
#include "slm/error.h"
#include "src/format/gguf.h"

namespace slm {
namespace {

class TensorFinder {
 public:
  TensorFinder(const GgufFile& file, Weights& weights) : file_(file), weights_(weights) {}

  const GgufTensor* find(const std::string& name, bool required = true) const {
    const GgufTensor* t = file_.find_tensor(name);
    if (!t && required) {
      throw FormatError(fmt::format("{}: missing tensor '{}'", file_.path(), name));
    }
    return t;
  }

  void check_shape(const GgufTensor& t, std::vector<uint64_t> expected) const {
    if (t.dims != expected) {
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", file_.path(),
                                    t.name, fmt::join(t.dims, ", "), fmt::join(expected, ", ")));
    }
  }

  Matrix matrix(const GgufTensor& t, int64_t rows, int64_t cols) const {
    check_shape(t, {uint64_t(cols), uint64_t(rows)});
    if (!ref::supports(t.type)) {
      throw UnsupportedError(fmt::format("{}: tensor '{}' has type {}, which slm cannot compute yet",
                                         file_.path(), t.name, dtype_name(t.type)));
    }
    return Matrix{t.name, t.type, t.data, rows, cols};
  }

  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return matrix(*find(name), rows, cols);
  }

  // A 1-D f32 vector; converted once when stored as f16/bf16/... (the copy's buffer keeps its
  // address when `converted` grows, since moving a std::vector keeps its heap block).
  const float* vector(const std::string& name, int64_t n) const {
    const GgufTensor& t = *find(name);
    check_shape(t, {uint64_t(n)});
    if (t.type == DType::kF32) return reinterpret_cast<const float*>(t.data);
    if (!ref::supports(t.type)) {
      throw UnsupportedError(fmt::format("{}: tensor '{}' has type {}, which slm cannot compute yet",
                                         file_.path(), t.name, dtype_name(t.type)));
    }
    std::vector<float>& out = weights_.converted.emplace_back(size_t(n));
    ref::dequantize_row(t.type, t.data, out.data(), size_t(n));
    return out.data();
  }

 private:
  const GgufFile& file_;
  Weights& weights_;
};

}  // namespace

Weights load_weights(const GgufFile& file, const ModelConfig& c) {
  Weights w;
  TensorFinder f(file, w);
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim;
  const int64_t kv_dim = int64_t(c.n_head_kv) * c.head_dim;

  w.token_embd = f.matrix("token_embd.weight", c.n_vocab, c.n_embd);
  w.output_norm = f.vector("output_norm.weight", c.n_embd);
  if (const GgufTensor* out = f.find("output.weight", /*required=*/false)) {
    w.output = f.matrix(*out, c.n_vocab, c.n_embd);
  } else {
    w.output = w.token_embd;  // tied embeddings
    w.tied_output = true;
  }
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm = f.vector(p + "attn_norm.weight", c.n_embd);
    L.wq = f.matrix(p + "attn_q.weight", q_dim, c.n_embd);
    L.wk = f.matrix(p + "attn_k.weight", kv_dim, c.n_embd);
    L.wv = f.matrix(p + "attn_v.weight", kv_dim, c.n_embd);
    L.wo = f.matrix(p + "attn_output.weight", c.n_embd, q_dim);
    if (c.qkv_bias) {
      L.bq = f.vector(p + "attn_q.bias", q_dim);
      L.bk = f.vector(p + "attn_k.bias", kv_dim);
      L.bv = f.vector(p + "attn_v.bias", kv_dim);
    }
    if (c.qk_norm) {
      L.q_norm = f.vector(p + "attn_q_norm.weight", c.head_dim);
      L.k_norm = f.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    L.ffn_norm = f.vector(p + "ffn_norm.weight", c.n_embd);
    L.w_gate = f.matrix(p + "ffn_gate.weight", c.n_ff, c.n_embd);
    L.w_up = f.matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
    L.w_down = f.matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
  }
  return w;
}

}  // namespace slm
