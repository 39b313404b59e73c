#include "src/model/weights.h"


#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/quant.h"
#include "slm/error.h"
#include "src/format/gguf.h"

namespace slm {
namespace {

class TensorFinder {
 public:
  TensorFinder(const TensorSource& source, Weights& weights) : source_(source), weights_(weights) {}

  std::optional<SourceTensor> find(const std::string& name, bool required = true) const {
    std::optional<SourceTensor> t = source_.find(name);
    if (!t && required) throw FormatError(source_.missing(name));
    if (t && !ref::supports(t->type)) {
      throw UnsupportedError(fmt::format("{}: tensor '{}' has type {}, which slm cannot compute yet",
                                         t->file, t->name, dtype_name(t->type)));
    }
    return t;
  }

  Matrix matrix(const SourceTensor& t, int64_t rows, int64_t cols) const {
    check_shape(t, {uint64_t(cols), uint64_t(rows)});
    return Matrix{t.name, t.type, aligned(t), rows, cols};
  }

  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return matrix(*find(name), rows, cols);
  }

  // One matrix per expert: slices of the stacked `{base}_exps` tensor [cols, rows, n_expert]
  // (GGUF), or else tensors `{base}.E` of their own (Hugging Face checkpoints, old GGUF files).
  std::vector<Matrix> experts(const std::string& prefix, const std::string& base, int64_t rows,
                              int64_t cols, int32_t n_expert) const {
    std::vector<Matrix> out;
    if (const auto t = find(prefix + base + "_exps.weight", /*required=*/false)) {
      check_shape(*t, {uint64_t(cols), uint64_t(rows), uint64_t(n_expert)});
      const auto* data = static_cast<const uint8_t*>(aligned(*t));
      const size_t stride = row_bytes(t->type, size_t(cols)) * size_t(rows);
      for (int32_t e = 0; e < n_expert; ++e) {
        out.push_back(Matrix{t->name, t->type, data + size_t(e) * stride, rows, cols});
      }
      return out;
    }
    for (int32_t e = 0; e < n_expert; ++e) {
      const std::string name = fmt::format("{}{}.{}.weight", prefix, base, e);
      const auto t = find(name, /*required=*/false);
      if (!t) {
        throw FormatError(fmt::format("{} (nor a stacked '{}{}_exps.weight')",
                                      source_.missing(name), prefix, base));
      }
      out.push_back(matrix(*t, rows, cols));
    }
    return out;
  }

  // A matrix of one row, which files also store as a vector [cols] (llama.cpp's
  // ffn_gate_inp_shexp).
  Matrix row(const std::string& name, int64_t cols) const {
    const SourceTensor t = *find(name);
    if (t.dims.size() == 1) check_shape(t, {uint64_t(cols)});
    else check_shape(t, {uint64_t(cols), 1});
    return Matrix{t.name, t.type, aligned(t), 1, cols};
  }

  // Rows [first, first + rows) of m, in place (a fused tensor's part: rows are contiguous).
  static Matrix rows(const Matrix& m, int64_t first, int64_t rows) {
    const auto* base = static_cast<const uint8_t*>(m.data);
    return Matrix{m.name, m.type, base + size_t(first) * row_bytes(m.type, size_t(m.cols)), rows,
                  m.cols};
  }

  // A 1-D f32 vector; converted once when stored as f16/bf16/... (the copy's buffer keeps its
  // address when `converted` grows, since moving a std::vector keeps its heap block).
  const float* vector(const std::string& name, int64_t n) const {
    const SourceTensor t = *find(name);
    check_shape(t, {uint64_t(n)});
    if (t.type == DType::kF32) return static_cast<const float*>(aligned(t));
    std::vector<float>& out = weights_.converted.emplace_back(size_t(n));
    ref::dequantize_row(t.type, t.data, out.data(), size_t(n));
    return out.data();
  }

  // An RMSNorm weight plus `offset` (Gemma's Hugging Face checkpoints store w − 1).
  const float* norm(const std::string& name, int64_t n, float offset) const {
    const float* w = vector(name, n);
    if (offset == 0) return w;
    std::vector<float>& out = weights_.converted.emplace_back(w, w + n);
    for (float& v : out) v += offset;
    return out.data();
  }

 private:
  void check_shape(const SourceTensor& t, const std::vector<uint64_t>& ggml_dims) const {
    if (t.dims != ggml_dims) {
      // Messages use the checkpoint's own order (PyTorch's is ggml's reversed).
      const auto shown = [&](const std::vector<uint64_t>& d) {
        return t.outermost_first ? std::vector<uint64_t>(d.rbegin(), d.rend()) : d;
      };
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", t.file,
                                    t.name, fmt::join(shown(t.dims), ", "),
                                    fmt::join(shown(ggml_dims), ", ")));
    }
  }

  // The tensor's bytes where its elements can be read in place: safetensors does not promise
  // aligned data (only that the header is JSON), so a misaligned tensor is copied once.
  const void* aligned(const SourceTensor& t) const {
    const DTypeTraits& tr = traits(t.type);
    const size_t align = tr.block_elems == 1 ? tr.block_bytes : 1;
    if (reinterpret_cast<uintptr_t>(t.data) % align == 0) return t.data;
    size_t bytes = tr.block_bytes;
    for (uint64_t d : t.dims) bytes *= d;
    std::vector<float>& copy = weights_.converted.emplace_back((bytes + 3) / 4);
    std::memcpy(copy.data(), t.data, bytes);
    return copy.data();
  }

  const TensorSource& source_;
  Weights& weights_;
};

// Passes lookups through and remembers what was found (list_weights).
class RecordingSource final : public TensorSource {
 public:
  explicit RecordingSource(const TensorSource& inner) : inner_(inner) {}
  std::optional<SourceTensor> find(const std::string& gguf_name) const override {
    std::optional<SourceTensor> t = inner_.find(gguf_name);
    if (t) found.emplace_back(gguf_name, *t);
    return t;
  }
  std::string missing(const std::string& gguf_name) const override {
    return inner_.missing(gguf_name);
  }
  mutable std::vector<std::pair<std::string, SourceTensor>> found;

 private:
  const TensorSource& inner_;
};

void load_experts(const TensorFinder& f, const std::string& p, const ModelConfig& c,
                  LayerWeights& L) {
  const int64_t F = c.n_ff_expert, E = c.n_embd;
  L.router = f.matrix(p + "ffn_gate_inp.weight", c.n_expert, E);
  L.expert_gate = f.experts(p, "ffn_gate", F, E, c.n_expert);
  L.expert_up = f.experts(p, "ffn_up", F, E, c.n_expert);
  L.expert_down = f.experts(p, "ffn_down", E, F, c.n_expert);
  if (c.n_ff_shared > 0) {
    const int64_t S = c.n_ff_shared;
    L.shared_expert_gate = f.row(p + "ffn_gate_inp_shexp.weight", E);
    L.shared_gate = f.matrix(p + "ffn_gate_shexp.weight", S, E);
    L.shared_up = f.matrix(p + "ffn_up_shexp.weight", S, E);
    L.shared_down = f.matrix(p + "ffn_down_shexp.weight", E, S);
  }
}

}  // namespace

std::vector<Matrix*> layer_matrices(LayerWeights& L) {
  std::vector<Matrix*> out;
  for (Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down, &L.router,
                    &L.shared_expert_gate, &L.shared_gate, &L.shared_up, &L.shared_down}) {
    if (m->data) out.push_back(m);
  }
  for (auto* list : {&L.expert_gate, &L.expert_up, &L.expert_down}) {
    for (Matrix& m : *list) out.push_back(&m);
  }
  return out;
}

std::vector<const Matrix*> layer_matrices(const LayerWeights& L) {
  const std::vector<Matrix*> all = layer_matrices(const_cast<LayerWeights&>(L));
  return {all.begin(), all.end()};
}

uint64_t repack_for_tiles(Weights& w, const KernelSet& k, std::span<uint8_t> owned) {
  std::vector<Matrix*> matrices;
  for (LayerWeights& L : w.layers) {
    for (Matrix* m : layer_matrices(L)) matrices.push_back(m);
  }
  // A tied output is token_embd: repacked too, its embedding lookups then read rows back through
  // TileRepacking::dequantize_row (an untied token_embd is only looked up: it stays rows).
  matrices.push_back(&w.output);
  if (w.tied_output) matrices.push_back(&w.token_embd);
  // The writable bytes at m's data (null where it is not ours to rewrite).
  const auto writable = [&](const Matrix& m, size_t bytes) -> uint8_t* {
    const auto at = reinterpret_cast<uintptr_t>(m.data);
    const auto offset_in = [&](std::span<uint8_t> s) -> std::optional<size_t> {
      const auto begin = reinterpret_cast<uintptr_t>(s.data());
      if (s.empty() || at < begin || bytes > s.size() || at - begin > s.size() - bytes) {
        return std::nullopt;
      }
      return at - begin;
    };
    if (const auto o = offset_in(owned)) return owned.data() + *o;
    for (std::vector<uint8_t>& q : w.quantized) {
      if (const auto o = offset_in(q)) return q.data() + *o;
    }
    return nullptr;
  };
  std::vector<const void*> done;  // a tensor two matrices view is rewritten once
  std::vector<uint8_t> buffers;   // a tile's rows for each thread
  uint64_t total = 0;
  for (Matrix* m : matrices) {
    const auto id = static_cast<size_t>(m->type);
    if (m->data == nullptr || id >= kDTypeSlots || k.repacked[id].repack == nullptr ||
        m->rows % int64_t(kTileRows) != 0 || m->layout != WeightLayout::kRows) {
      continue;
    }
    const size_t rb = row_bytes(m->type, size_t(m->cols)), bytes = rb * size_t(m->rows);
    if (std::find(done.begin(), done.end(), m->data) != done.end()) {
      m->layout = WeightLayout::kRepackedTiles;
      continue;
    }
    uint8_t* data = writable(*m, bytes);
    if (data == nullptr) continue;
    // The tiles on all cores (Q4_K's repacking takes a few tenths of a second for TinyLlama),
    // each thread copying its tile aside before rewriting it in place.
    const size_t tile_bytes = kTileRows * rb;
    buffers.resize(tile_bytes * size_t(omp_get_max_threads()));
    const auto tiles = static_cast<int64_t>(size_t(m->rows) / kTileRows);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      uint8_t* tile = buffers.data() + size_t(omp_get_thread_num()) * tile_bytes;
      uint8_t* at = data + size_t(t) * tile_bytes;
      std::memcpy(tile, at, tile_bytes);
      k.repacked[id].repack(tile, size_t(m->cols), at);
    }
    m->layout = WeightLayout::kRepackedTiles;
    done.push_back(m->data);
    total += bytes;
  }
  return total;
}

std::optional<SourceTensor> GgufTensorSource::find(const std::string& gguf_name) const {
  const GgufTensor* t = file_.find_tensor(gguf_name);
  if (!t) return std::nullopt;
  return SourceTensor{t->name, file_.path(), t->type, t->data, t->dims};
}

std::string GgufTensorSource::missing(const std::string& gguf_name) const {
  return fmt::format("{}: missing tensor '{}'", file_.path(), gguf_name);
}

Weights load_weights(const TensorSource& source, const ModelConfig& c) {
  Weights w;
  TensorFinder f(source, w);
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim;
  const int64_t kv_dim = int64_t(c.n_head_kv) * c.head_dim;

  w.token_embd = f.matrix("token_embd.weight", c.n_vocab, c.n_embd);
  const float offset = c.norm_weight_offset;  // Gemma's HF checkpoints store w − 1
  w.output_norm = f.norm("output_norm.weight", c.n_embd, offset);
  if (c.norm_bias) w.output_norm_b = f.vector("output_norm.bias", c.n_embd);
  if (const auto out = f.find("output.weight", /*required=*/false)) {
    w.output = f.matrix(*out, c.n_vocab, c.n_embd);
  } else {
    w.output = w.token_embd;  // tied embeddings
    w.tied_output = true;
  }
  if (c.output_bias) w.output_b = f.vector("output.bias", c.n_vocab);
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights& L = w.layers.emplace_back();
    if (c.pre_norms) L.attn_norm = f.norm(p + "attn_norm.weight", c.n_embd, offset);
    if (c.norm_bias) L.attn_norm_b = f.vector(p + "attn_norm.bias", c.n_embd);
    // q/k/v: one fused tensor (rows of q, then k, then v) where the checkpoint has one.
    if (const auto qkv = f.find(p + "attn_qkv.weight", /*required=*/false)) {
      const Matrix m = f.matrix(*qkv, q_dim + 2 * kv_dim, c.n_embd);
      L.wq = TensorFinder::rows(m, 0, q_dim);
      L.wk = TensorFinder::rows(m, q_dim, kv_dim);
      L.wv = TensorFinder::rows(m, q_dim + kv_dim, kv_dim);
      if (c.qkv_bias) {
        L.bq = f.vector(p + "attn_qkv.bias", q_dim + 2 * kv_dim);
        L.bk = L.bq + q_dim;
        L.bv = L.bk + kv_dim;
      }
    } else {
      const auto q = f.find(p + "attn_q.weight", /*required=*/false);
      if (!q) {
        throw FormatError(fmt::format("{} (nor the fused q/k/v: {})",
                                      source.missing(p + "attn_q.weight"),
                                      source.missing(p + "attn_qkv.weight")));
      }
      L.wq = f.matrix(*q, q_dim, c.n_embd);
      L.wk = f.matrix(p + "attn_k.weight", kv_dim, c.n_embd);
      L.wv = f.matrix(p + "attn_v.weight", kv_dim, c.n_embd);
      if (c.qkv_bias) {
        L.bq = f.vector(p + "attn_q.bias", q_dim);
        L.bk = f.vector(p + "attn_k.bias", kv_dim);
        L.bv = f.vector(p + "attn_v.bias", kv_dim);
      }
    }
    L.wo = f.matrix(p + "attn_output.weight", c.n_embd, q_dim);
    if (c.attn_output_bias) L.bo = f.vector(p + "attn_output.bias", c.n_embd);
    if (c.qk_norm) {
      L.q_norm = f.norm(p + "attn_q_norm.weight", c.qk_norm_whole ? q_dim : c.head_dim, offset);
      L.k_norm = f.norm(p + "attn_k_norm.weight", c.qk_norm_whole ? kv_dim : c.head_dim, offset);
    }
    if (!c.parallel_block && c.pre_norms) {
      L.ffn_norm = f.norm(p + "ffn_norm.weight", c.n_embd, offset);
      if (c.norm_bias) L.ffn_norm_b = f.vector(p + "ffn_norm.bias", c.n_embd);
    }
    if (c.post_norms) {
      L.post_attention_norm = f.norm(p + "post_attention_norm.weight", c.n_embd, offset);
      L.post_ffw_norm = f.norm(p + "post_ffw_norm.weight", c.n_embd, offset);
    }
    if (c.n_expert > 0) {
      load_experts(f, p, c, L);
      continue;
    }
    if (c.ffn_kind == FfnKind::kSwiGlu && c.fused_gate_up) {
      const Matrix gate_up = f.matrix(p + "ffn_up.weight", 2 * int64_t(c.n_ff), c.n_embd);
      L.w_gate = TensorFinder::rows(gate_up, 0, c.n_ff);
      L.w_up = TensorFinder::rows(gate_up, c.n_ff, c.n_ff);
    } else {
      if (c.ffn_kind == FfnKind::kSwiGlu)
        L.w_gate = f.matrix(p + "ffn_gate.weight", c.n_ff, c.n_embd);
      L.w_up = f.matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
    }
    L.w_down = f.matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
    if (c.ffn_bias) {
      L.b_up = f.vector(p + "ffn_up.bias", c.n_ff);
      L.b_down = f.vector(p + "ffn_down.bias", c.n_embd);
    }
  }
  return w;
}

std::vector<std::pair<std::string, SourceTensor>> list_weights(const TensorSource& source,
                                                               const ModelConfig& config) {
  RecordingSource recording(source);
  load_weights(recording, config);
  return std::move(recording.found);
}

}  // namespace slm
