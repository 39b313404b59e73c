#include "src/graph/decoder.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/matmul.h"
#include "kernels/ref/quant.h"

namespace slm {

namespace {
// Element-wise ops over n·F values are shared out in chunks of this many (a fixed size, so the
// split, and with it every value, is the same for any thread count).
constexpr size_t kChunk = 1024;
// Multiply-adds in a whole pass below which it runs on one thread: a team pays a fork/join and
// tens of barriers per token, which on a tiny model (stories260K decodes in ~0.2 ms) cost more
// than the split saves, and far more when the machine is oversubscribed.
constexpr size_t kMinTeamWork = size_t{1} << 20;

size_t matrix_macs(const Matrix& m) { return size_t(m.rows) * size_t(m.cols); }
}  // namespace

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

size_t Decoder::scratch_bytes() const {
  size_t floats = 0;
  for (const auto* buf : {&x_, &xn_, &q_, &k_, &v_, &attn_, &gate_, &up_, &out_, &rope_, &scores_}) {
    floats += buf->capacity();
  }
  return floats * sizeof(float) + act_.capacity();
}

void Decoder::matmul(const Matrix& w, const float* x, size_t n, float* y) {
  slm::matmul(w.type, w.data, size_t(w.rows), size_t(w.cols), x, n, y, size_t(w.rows),
              act_.data(), /*threads: the running team*/ 1);
}

void Decoder::forward(std::span<const int32_t> tokens, int32_t pos0, KvCache& cache,
                      bool all_logits, float* logits, int threads, float* hidden) {
  const size_t n = tokens.size(), E = size_t(c_.n_embd), R = size_t(c_.n_rot);
  threads = std::max(threads, 1);
  // These may throw (a bad SLM_ISA, memory, a full KV pool): before the team starts, as nothing may throw inside.
  kernels_ = &active_kernels();
  reserve(n, size_t(cache.capacity()), threads);
  cache.prepare(pos0, int32_t(n));
  const auto n_tok = static_cast<int64_t>(n);
  const size_t first = all_logits ? 0 : n - 1, rows = n - first;
  // The team's size does not change any value (each is computed by one thread, the same way),
  // only who computes it.
  if (work_per_token_ == 0) {
    work_per_token_ = matrix_macs(w_.output);
    for (const LayerWeights& L : w_.layers) {
      for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
        work_per_token_ += matrix_macs(*m);
      }
    }
  }
  const size_t attention_work = 2 * n * (size_t(pos0) + n) * size_t(c_.n_layer) *
                                size_t(c_.n_head) * size_t(c_.head_dim);
  const int team = n * work_per_token_ + attention_work >= kMinTeamWork ? threads : 1;

  // One parallel region for the whole pass (DESIGN.md): every step below is worksharing inside
  // it (orphaned `omp for`, which binds to the team of whoever calls). A team of one runs without
  // a region: even an idle one costs libgomp futex calls, which a tiny model notices.
  const size_t embd_row = row_bytes(w_.token_embd.type, E);
  const auto pass = [&] {
    // x = embedding rows of the tokens; one rotation table per position, shared by every layer
    // and head.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n_tok; ++i) {
      const auto* row = static_cast<const uint8_t*>(w_.token_embd.data) +
                        size_t(tokens[size_t(i)]) * embd_row;
      ref::dequantize_row(w_.token_embd.type, row, &x_[size_t(i) * E], E);
      ref::rope_table(pos0 + int32_t(i), R, c_.rope_freq_base, &rope_[size_t(i) * R],
                      c_.rope_freq_factors.empty() ? nullptr : c_.rope_freq_factors.data());
    }

    for (int32_t l = 0; l < c_.n_layer; ++l) {
      const LayerWeights& L = w_.layers[size_t(l)];
      attention_block(L, l, n, pos0, cache);
      mlp_block(L, n);
    }

    // logits = output · rms_norm(x) for the rows asked for
    residual_norm(w_.output_norm, first, n, /*add_out=*/true);
    if (hidden) {
#pragma omp single
      std::copy_n(&xn_[first * E], rows * E, hidden);
    }
    if (logits) matmul(w_.output, &xn_[first * E], rows, logits);
  };
  if (team > 1) {
#pragma omp parallel num_threads(team)
    pass();
  } else {
    pass();
  }
}

// xn = rms_norm(x) · w for rows [first, n), after x += out (the previous block's output) when
// add_out: the residual add is folded into the next norm, one pass and one barrier.
void Decoder::residual_norm(const float* w, size_t first, size_t n, bool add_out) {
  const size_t E = size_t(c_.n_embd);
  const OpsSet& ops = kernels_->ops;
#pragma omp for schedule(static)
  for (int64_t i = int64_t(first); i < int64_t(n); ++i) {
    float* x = &x_[size_t(i) * E];
    if (add_out) ops.add(x, &out_[size_t(i) * E], E);
    ops.rms_norm(x, w, c_.norm_eps, &xn_[size_t(i) * E], E);
  }
}

// x += Wo · attention(q, k, v),  xn = rms_norm(x) · attn_norm,
// q = rope(Wq·xn + bq), k = rope(Wk·xn + bk), v = Wv·xn + bv (per-head q/k norms before RoPE)
// (the add happens in the next residual_norm)
void Decoder::attention_block(const LayerWeights& L, int32_t layer, size_t n, int32_t pos0,
                              KvCache& cache) {
  const size_t D = size_t(c_.head_dim), R = size_t(c_.n_rot);
  const size_t H = size_t(c_.n_head), KV = size_t(c_.n_head_kv);
  const OpsSet& ops = kernels_->ops;
  residual_norm(L.attn_norm, 0, n, /*add_out=*/layer > 0);
  matmul(L.wq, xn_.data(), n, q_.data());
  matmul(L.wk, xn_.data(), n, k_.data());
  matmul(L.wv, xn_.data(), n, v_.data());

  // Finish every head where the model has the pieces: q = rope(norm(Wq·xn + bq)), likewise k,
  // v = Wv·xn + bv (biases: Qwen2; per-head RMSNorm: Qwen3). Store each kv head's key and value
  // in the cache's element type at its position.
  const auto rope = c_.rope_layout == RopeLayout::kInterleaved ? ops.rope_interleaved
                                                               : ops.rope_half_split;
  const bool f16 = cache.element() == KvElement::kF16;
  const size_t elem = f16 ? 2 : 4;
  const auto heads = static_cast<int64_t>(n * (H + KV));
#pragma omp for schedule(static)
  for (int64_t job = 0; job < heads; ++job) {
    const size_t i = size_t(job) / (H + KV), h = size_t(job) % (H + KV);
    const float* cs = &rope_[i * R];
    if (h < H) {
      float* q = &q_[(i * H + h) * D];
      if (L.bq) ops.add(q, L.bq + h * D, D);
      if (L.q_norm) ops.rms_norm(q, L.q_norm, c_.norm_eps, q, D);
      rope(q, cs, R);
      continue;
    }
    const size_t g = h - H;
    const int32_t pos = pos0 + int32_t(i);
    float *k = &k_[(i * KV + g) * D], *v = &v_[(i * KV + g) * D];
    if (L.bk) ops.add(k, L.bk + g * D, D);
    if (L.bv) ops.add(v, L.bv + g * D, D);
    if (L.k_norm) ops.rms_norm(k, L.k_norm, c_.norm_eps, k, D);
    rope(k, cs, R);
    for (auto [src, dst] : {std::pair{k, cache.k_row(layer, pos)},
                            std::pair{v, cache.v_row(layer, pos)}}) {
      if (f16) kernels_->quantize_row(DType::kF16, src, dst + g * D * elem, D);
      else std::copy_n(src, D, reinterpret_cast<float*>(dst) + g * D);
    }
  }

  // Causal attention: the token at position p sees positions [0, p], or only the last `window`
  // of them (sliding-window layers). Query head h reads kv head h / (H / KV) (grouped-query
  // attention). One job per (token, head).
  const float scale = 1.0f / std::sqrt(float(D));
  const int32_t window = c_.window(layer);
  const auto jobs = static_cast<int64_t>(n * H);
#pragma omp for schedule(static)
  for (int64_t job = 0; job < jobs; ++job) {
    const size_t i = size_t(job) / H, h = size_t(job) % H, g = h / (H / KV);
    const int32_t pos = pos0 + int32_t(i);
    const int32_t first = window > 0 ? std::max(0, pos + 1 - window) : 0;
    float* scores = &scores_[size_t(omp_get_thread_num()) * size_t(cache.capacity())];
    ref::KvRows keys = cache.k_rows(layer, first), values = cache.v_rows(layer, first);
    keys.offset += g * D * elem;
    values.offset += g * D * elem;
    ops.attention(&q_[(i * H + h) * D], keys, values, f16, size_t(pos + 1 - first), D, scale,
                  scores, &attn_[(i * H + h) * D]);
  }
  matmul(L.wo, attn_.data(), n, out_.data());
}

// x += W_down · (silu(W_gate·xn) ⊙ W_up·xn),  xn = rms_norm(x) · ffn_norm
// (the add happens in the next residual_norm)
void Decoder::mlp_block(const LayerWeights& L, size_t n) {
  const size_t F = size_t(c_.n_ff), total = n * F;
  residual_norm(L.ffn_norm, 0, n, /*add_out=*/true);
  matmul(L.w_gate, xn_.data(), n, gate_.data());
  matmul(L.w_up, xn_.data(), n, up_.data());
  const auto chunks = static_cast<int64_t>((total + kChunk - 1) / kChunk);
#pragma omp for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t at = size_t(c) * kChunk, len = std::min(kChunk, total - at);
    kernels_->ops.swiglu(&gate_[at], &up_[at], &gate_[at], len);
  }
  matmul(L.w_down, gate_.data(), n, out_.data());
}

}  // namespace slm
