#include "src/graph/decoder.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/matmul.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quant.h"

namespace slm {

void Decoder::reserve(size_t n, size_t max_positions, int threads) {
  const size_t E = size_t(c_.n_embd), q_dim = size_t(c_.n_head) * c_.head_dim;
  const size_t kv_dim = size_t(c_.n_head_kv) * c_.head_dim, F = size_t(c_.n_ff);
  if (n > capacity_tokens_) {
    capacity_tokens_ = n;
    for (auto* buf : {&x_, &xn_, &out_}) buf->resize(n * E);
    for (auto* buf : {&q_, &attn_}) buf->resize(n * q_dim);
    for (auto* buf : {&k_, &v_}) buf->resize(n * kv_dim);
    for (auto* buf : {&gate_, &up_}) buf->resize(n * F);
    rope_.resize(n * size_t(c_.n_rot));
    size_t act = 0;
    for (const Matrix* m : {&w_.output, &w_.token_embd}) {
      act = std::max(act, matmul_scratch_bytes(m->type, size_t(m->cols), n));
    }
    for (const LayerWeights& L : w_.layers) {
      for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
        act = std::max(act, matmul_scratch_bytes(m->type, size_t(m->cols), n));
      }
    }
    act_.resize(act);
  }
  scores_.resize(std::max(scores_.size(), max_positions * size_t(threads)));
}

void Decoder::matmul(const Matrix& w, const float* x, size_t n, float* y, int threads) {
  slm::matmul(w.type, w.data, size_t(w.rows), size_t(w.cols), x, n, y, size_t(w.rows),
              act_.data(), threads);
}

void Decoder::forward(std::span<const int32_t> tokens, int32_t pos0, KvCache& cache,
                      bool all_logits, float* logits, int threads) {
  const size_t n = tokens.size(), E = size_t(c_.n_embd);
  reserve(n, size_t(cache.capacity()), threads);

  // x = embedding rows of the tokens
  const size_t embd_row = row_bytes(w_.token_embd.type, E);
  for (size_t i = 0; i < n; ++i) {
    const auto* row = static_cast<const uint8_t*>(w_.token_embd.data) + size_t(tokens[i]) * embd_row;
    ref::dequantize_row(w_.token_embd.type, row, &x_[i * E], E);
  }
  // One rotation table per position, shared by every layer and head.
  for (size_t i = 0; i < n; ++i) {
    ref::rope_table(pos0 + int32_t(i), size_t(c_.n_rot), c_.rope_freq_base, &rope_[i * c_.n_rot]);
  }

  for (int32_t l = 0; l < c_.n_layer; ++l) {
    const LayerWeights& L = w_.layers[size_t(l)];
    attention_block(L, l, n, pos0, cache, threads);
    mlp_block(L, n, threads);
  }

  // logits = output · rms_norm(x) for the rows asked for
  const size_t first = all_logits ? 0 : n - 1, rows = n - first;
  for (size_t i = first; i < n; ++i) {
    ref::rms_norm(&x_[i * E], w_.output_norm, c_.norm_eps, &xn_[i * E], E);
  }
  matmul(w_.output, &xn_[first * E], rows, logits, threads);
}

// x += Wo · attention(rope(Wq·xn), rope(Wk·xn), Wv·xn),  xn = rms_norm(x) · attn_norm
void Decoder::attention_block(const LayerWeights& L, int32_t layer, size_t n, int32_t pos0,
                              KvCache& cache, int threads) {
  const size_t E = size_t(c_.n_embd), D = size_t(c_.head_dim), R = size_t(c_.n_rot);
  const size_t H = size_t(c_.n_head), KV = size_t(c_.n_head_kv);
  for (size_t i = 0; i < n; ++i) ref::rms_norm(&x_[i * E], L.attn_norm, c_.norm_eps, &xn_[i * E], E);
  matmul(L.wq, xn_.data(), n, q_.data(), threads);
  matmul(L.wk, xn_.data(), n, k_.data(), threads);
  matmul(L.wv, xn_.data(), n, v_.data(), threads);

  const auto rope = c_.rope_layout == RopeLayout::kInterleaved ? ref::rope_interleaved
                                                               : ref::rope_half_split;
  const bool f16 = cache.element() == KvElement::kF16;
  for (size_t i = 0; i < n; ++i) {
    const float* cs = &rope_[i * R];
    for (size_t h = 0; h < H; ++h) rope(&q_[(i * H + h) * D], cs, R);
    for (size_t h = 0; h < KV; ++h) rope(&k_[(i * KV + h) * D], cs, R);
    // Store this position's keys and values in the cache's element type.
    const int32_t pos = pos0 + int32_t(i);
    for (auto [src, dst] : {std::pair{&k_[i * KV * D], cache.k_row(layer, pos)},
                            std::pair{&v_[i * KV * D], cache.v_row(layer, pos)}}) {
      if (f16) ref::quantize_row(DType::kF16, src, dst, KV * D);
      else std::copy_n(src, KV * D, reinterpret_cast<float*>(dst));
    }
  }

  // Causal attention: the token at position p sees positions [0, p]. Query head h reads kv head
  // h / (H / KV) (grouped-query attention).
  const float scale = 1.0f / std::sqrt(float(D));
  const size_t elem = f16 ? 2 : 4, stride = size_t(cache.capacity());
  const size_t positions = size_t(pos0) + n;  // keys the last token attends to
  const auto jobs = static_cast<int64_t>(n * H);
  const bool parallel = threads > 1 && n * H * positions * D >= (size_t{1} << 16);
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
  for (int64_t job = 0; job < jobs; ++job) {
    const size_t i = size_t(job) / H, h = size_t(job) % H, g = h / (H / KV);
    float* scores = &scores_[size_t(omp_get_thread_num()) * stride];
    ref::attention(&q_[(i * H + h) * D], cache.k_row(layer, 0) + g * D * elem,
                   cache.v_row(layer, 0) + g * D * elem, cache.row_stride(), f16,
                   size_t(pos0) + i + 1, D, scale, scores, &attn_[(i * H + h) * D]);
  }
  matmul(L.wo, attn_.data(), n, out_.data(), threads);
  ref::add(x_.data(), out_.data(), n * E);
}

// x += W_down · (silu(W_gate·xn) ⊙ W_up·xn),  xn = rms_norm(x) · ffn_norm
void Decoder::mlp_block(const LayerWeights& L, size_t n, int threads) {
  const size_t E = size_t(c_.n_embd), F = size_t(c_.n_ff);
  for (size_t i = 0; i < n; ++i) ref::rms_norm(&x_[i * E], L.ffn_norm, c_.norm_eps, &xn_[i * E], E);
  matmul(L.w_gate, xn_.data(), n, gate_.data(), threads);
  matmul(L.w_up, xn_.data(), n, up_.data(), threads);
  ref::swiglu(gate_.data(), up_.data(), gate_.data(), n * F);
  matmul(L.w_down, gate_.data(), n, out_.data(), threads);
  ref::add(x_.data(), out_.data(), n * E);
}

}  // namespace slm
