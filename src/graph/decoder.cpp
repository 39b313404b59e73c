#include "src/graph/decoder.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/ref/ops.h"
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

MatmulOutput output_of(const Matrix& w, float* y) {
  return {w.type, w.data, size_t(w.rows), y, size_t(w.rows), w.layout};
}

// The calling thread's share of jobs [0, n) (cost(j) > 0), for a team whose every thread calls
// this: contiguous ranges of about equal total cost, where an even split by count would not be
// even in work (a causal pass's later tokens attend over more positions: on two threads, a
// 512-token prompt's second half is 3x its first's).
template <typename Cost>
std::pair<int64_t, int64_t> share_of(int64_t n, Cost cost) {
  const int team = omp_get_num_threads(), me = omp_get_thread_num();
  double total = 0;
  for (int64_t j = 0; j < n; ++j) total += cost(j);
  // Job j goes to the thread whose share holds the middle of j's cost.
  const auto owner = [&](double at) { return std::min(team - 1, int(at * team / total)); };
  int64_t begin = n, end = n;
  double before = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double c = cost(j);
    const int t = owner(before + c / 2);
    if (t == me && begin == n) begin = j;
    if (t > me) {
      end = j;
      break;
    }
    before += c;
  }
  return {std::min(begin, end), end};
}
}  // namespace

void Decoder::reserve(size_t n, size_t max_positions, int threads) {
  if (layer_rope_.empty()) {
    // One rotation table per distinct (base, linear factor); each table's divisors are the
    // Llama 3 factors times the linear factor.
    for (int32_t l = 0; l < c_.n_layer; ++l) {
      const RopeKind kind{c_.rope_base(l), c_.rope_linear(l)};
      auto at = std::find(rope_kinds_.begin(), rope_kinds_.end(), kind);
      if (kind.base > 0 && at == rope_kinds_.end()) {
        at = rope_kinds_.insert(at, kind);
        std::vector<float>& f = rope_factors_.emplace_back();
        if (kind.linear != 1.0f || !c_.rope_freq_factors.empty()) {
          f = c_.rope_freq_factors;
          f.resize(size_t(c_.n_rot) / 2, 1.0f);
          for (float& v : f) v *= kind.linear;
        }
      }
      layer_rope_.push_back(kind.base > 0 ? int32_t(at - rope_kinds_.begin()) : -1);
    }
  }
  const size_t E = size_t(c_.n_embd), q_dim = size_t(c_.n_head) * c_.head_dim;
  const size_t kv_dim = size_t(c_.n_head_kv) * c_.head_dim, F = size_t(c_.n_ff);
  const bool grows = n > capacity_tokens_;
  if (grows) {
    capacity_tokens_ = n;
    for (auto* buf : {&x_, &xn_, &out_}) buf->resize(n * E);
    for (auto* buf : {&q_, &attn_}) buf->resize(n * q_dim);
    for (auto* buf : {&k_, &v_}) buf->resize(n * kv_dim);
    rows_.resize(n);
    wanted_.resize(n);
    // MoE: n·k routed rows of expert width, or n rows of the shared expert's.
    const size_t routed = n * size_t(c_.n_expert_used);
    const size_t ff =
        std::max({n * F, routed * size_t(c_.n_ff_expert), n * size_t(c_.n_ff_shared)});
    for (auto* buf : {&gate_, &up_}) buf->resize(ff);
    rope_.resize(n * size_t(c_.n_rot) * rope_kinds_.size());
    if (c_.n_expert > 0) {
      router_.resize(n * size_t(c_.n_expert));
      for (auto* buf : {&moe_x_, &moe_y_}) buf->resize(routed * E);
      route_weight_.resize(routed);
      shared_gate_.resize(n);
      for (auto* buf : {&route_expert_, &route_row_, &row_token_}) buf->resize(routed);
      expert_first_.resize(size_t(c_.n_expert) + 1);
    }
  }
  if (grows || threads > act_team_) {
    act_team_ = std::max(act_team_, threads);
    act_.resize(activation_bytes(capacity_tokens_, act_team_));
  }
  scores_.resize(std::max(scores_.size(), max_positions * size_t(threads)));
}

// The matmuls' scratch for up to n tokens (MoE experts take any count up to n) in a team of up to
// `team` threads (a single token is converted by each of them).
size_t Decoder::activation_bytes(size_t n, int team) const {
  size_t act = 0;
  const auto need = [&](std::span<const MatmulOutput> outs, size_t cols) {
    act = std::max({act, matmul_shared_scratch_bytes(outs, cols, n),
                    matmul_shared_scratch_bytes(outs, cols, 1, team)});
  };
  for (const Matrix* m : {&w_.output, &w_.token_embd}) {
    const MatmulOutput out = output_of(*m, nullptr);
    need(std::span(&out, 1), size_t(m->cols));
  }
  for (const LayerWeights& L : w_.layers) {
    for (const Matrix* m : layer_matrices(L)) {
      const MatmulOutput out = output_of(*m, nullptr);
      need(std::span(&out, 1), size_t(m->cols));
    }
    // The products that share their input (matmul_shared) convert it once per activation type.
    for (const auto& group : {std::vector{&L.wq, &L.wk, &L.wv}, std::vector{&L.w_gate, &L.w_up},
                              std::vector{&L.shared_expert_gate, &L.shared_gate, &L.shared_up}}) {
      std::vector<MatmulOutput> outs;
      for (const Matrix* m : group) {
        if (m->data) outs.push_back(output_of(*m, nullptr));
      }
      if (!outs.empty()) need(outs, size_t(group[0]->cols));
    }
  }
  return act;
}

size_t Decoder::scratch_bytes() const {
  size_t floats = 0;
  for (const auto* buf : {&x_, &xn_, &q_, &k_, &v_, &attn_, &gate_, &up_, &out_, &rope_, &scores_,
                          &router_, &route_weight_, &moe_x_, &moe_y_, &shared_gate_}) {
    floats += buf->capacity();
  }
  for (const auto* buf : {&route_expert_, &route_row_, &row_token_, &expert_first_}) {
    floats += buf->capacity();  // int32, the size of a float
  }
  return floats * sizeof(float) + act_.capacity() + rows_.capacity() * sizeof(Row) +
         wanted_.capacity() * sizeof(int32_t);
}

void Decoder::embedding_row(int32_t token, float* x) const {
  const Matrix& m = w_.token_embd;
  const size_t E = size_t(m.cols), rb = row_bytes(m.type, E);
  const auto* data = static_cast<const uint8_t*>(m.data);
  if (m.layout == WeightLayout::kRepackedTiles) {  // tied to the output, repacked for its tiles
    const size_t run = size_t(token) / kTileRows * kTileRows;
    active_kernels().repacked[static_cast<size_t>(m.type)].dequantize_row(
        data + run * rb, size_t(token) % kTileRows, E, x);
    return;
  }
  ref::dequantize_row(m.type, data + size_t(token) * rb, x, E);
}

void Decoder::matmul(const Matrix& w, const float* x, size_t n, float* y) {
  slm::matmul(w.type, w.data, size_t(w.rows), size_t(w.cols), x, n, y, size_t(w.rows), act_.data(),
              /*threads: the running team*/ 1, w.layout);
}

void Decoder::matmul_shared(std::initializer_list<std::pair<const Matrix*, float*>> products,
                            const float* x, size_t n) {
  MatmulOutput outs[kMaxSharedOutputs];
  size_t count = 0;
  for (const auto& [w, y] : products) outs[count++] = output_of(*w, y);
  slm::matmul_shared(std::span(outs, count), size_t(products.begin()->first->cols), x, n,
                     act_.data(), /*threads: the running team*/ 1);
}

void Decoder::forward(std::span<const DecoderSegment> segments, float* logits, int threads,
                      float* hidden) {
  const size_t E = size_t(c_.n_embd), R = size_t(c_.n_rot);
  threads = std::max(threads, 1);
  size_t n = 0, max_positions = 0, attention_positions = 0;
  for (const DecoderSegment& s : segments) {
    n += s.tokens.size();
    max_positions = std::max(max_positions, size_t(s.cache->capacity()));
    attention_positions += s.tokens.size() * (size_t(s.pos0) + s.tokens.size());
  }
  // These may throw (a bad SLM_ISA, memory, a full KV pool): before the team starts, as nothing may
  // throw inside.
  kernels_ = &active_kernels();
  reserve(n, max_positions, threads);
  for (const DecoderSegment& s : segments) s.cache->prepare(s.pos0, int32_t(s.tokens.size()));
  scores_stride_ = max_positions;
  // The rows, segment after segment. LongRoPE: like transformers, a pass whose last position of
  // a sequence reaches rope_long_from rotates every one of that sequence's tokens with the long
  // factors; earlier passes' cached keys keep theirs.
  size_t n_wanted = 0;
  for (size_t r = 0; const DecoderSegment& s : segments) {
    const auto len = int32_t(s.tokens.size());
    const bool long_rope =
        !c_.rope_freq_factors_long.empty() && int64_t(s.pos0) + len > int64_t(c_.rope_long_from);
    for (int32_t i = 0; i < len; ++i, ++r) {
      rows_[r] = {s.tokens[size_t(i)], s.pos0 + i, s.cache, long_rope};
      if (s.all_logits || i + 1 == len) wanted_[n_wanted++] = int32_t(r);
    }
  }
  // The output norm runs on rows [first, n); the output matmul reads the wanted rows in place
  // when they are exactly those (one sequence, or one token per sequence), else gathered.
  const size_t first = size_t(wanted_[0]);
  const bool gather = n - first != n_wanted;
  const auto n_tok = static_cast<int64_t>(n);
  // The team's size does not change any value (each is computed by one thread, the same way),
  // only who computes it.
  if (work_per_token_ == 0) {
    // A token runs n_expert_used of a layer's n_expert experts.
    work_per_token_ = matrix_macs(w_.output);
    for (const LayerWeights& L : w_.layers) {
      size_t experts = 0;
      for (const auto* list : {&L.expert_gate, &L.expert_up, &L.expert_down}) {
        for (const Matrix& m : *list) experts += matrix_macs(m);
      }
      for (const Matrix* m : layer_matrices(L)) work_per_token_ += matrix_macs(*m);
      work_per_token_ -= experts;
      if (c_.n_expert > 0) {
        work_per_token_ += experts / size_t(c_.n_expert) * size_t(c_.n_expert_used);
      }
    }
  }
  const size_t attention_work =
      2 * attention_positions * size_t(c_.n_layer) * size_t(c_.n_head) * size_t(c_.head_dim);
  const int team = n * work_per_token_ + attention_work >= kMinTeamWork ? threads : 1;

  // One parallel region for the whole pass (DESIGN.md): every step below is worksharing inside
  // it (orphaned `omp for`, which binds to the team of whoever calls). A team of one runs without
  // a region: even an idle one costs libgomp futex calls, which a tiny model notices.
  const auto pass = [&] {
  // x = embedding rows of the tokens · embedding_scale; one rotation table per row and RoPE
  // kind, shared by the layers of that kind and their heads.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n_tok; ++i) {
      const Row& row = rows_[size_t(i)];
      embedding_row(row.token, &x_[size_t(i) * E]);
      if (c_.embedding_scale != 1.0f) ref::scale(&x_[size_t(i) * E], c_.embedding_scale, E);
      for (size_t b = 0; b < rope_kinds_.size(); ++b) {
        const float* f = row.long_rope              ? c_.rope_freq_factors_long.data()
                         : rope_factors_[b].empty() ? nullptr
                                                    : rope_factors_[b].data();
        ref::rope_table(row.pos, R, rope_kinds_[b].base, &rope_[(b * n + size_t(i)) * R], f,
                        c_.rope_attn_factor);
      }
    }

    for (int32_t l = 0; l < c_.n_layer; ++l) {
      const LayerWeights& L = w_.layers[size_t(l)];
      attention_block(L, l, n);
      if (L.router.data)
        moe_block(L, n);
      else
        mlp_block(L, n);
    }

    // logits = output · norm(x) (+ output bias) for the rows asked for; `hidden` gets the
    // normed rows (embeddings). Gathered rows go to out_, free after the norm.
    residual_norm(w_.output_norm, w_.output_norm_b, first, n, /*add_out=*/true,
                  w_.layers.back().post_ffw_norm);
    const float* wanted = &xn_[first * E];
    if (gather) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < int64_t(n_wanted); ++j) {
        std::copy_n(&xn_[size_t(wanted_[size_t(j)]) * E], E, &out_[size_t(j) * E]);
      }
      wanted = out_.data();
    }
    if (hidden) {
#pragma omp single
      std::copy_n(wanted, n_wanted * E, hidden);
    }
    if (logits) {
      matmul(w_.output, wanted, n_wanted, logits);
      if (w_.output_b) add_rows(logits, w_.output_b, n_wanted, size_t(c_.n_vocab));
      finish_logits(logits, n_wanted);
    }
  };
  if (team > 1) {
#pragma omp parallel num_threads(team)
    pass();
  } else {
    pass();
  }
}

// xn = norm(x) for rows [first, n) (RMSNorm · w, or LayerNorm · w + b; xn = x without w: OLMo
// 2's blocks have no norm before them), after x += finish(out) (the previous block's output)
// when add_out: the residual add is folded into the next norm, one pass and one barrier.
// finish(out) = residual_scale · rms_norm(out) · post_norm: the block's own norm where it has one
// (Gemma 2/3, OLMo 2), and Granite's residual_multiplier.
void Decoder::residual_norm(const float* w, const float* b, size_t first, size_t n, bool add_out,
                            const float* post_norm) {
  const size_t E = size_t(c_.n_embd);
  const OpsSet& ops = kernels_->ops;
  const bool layer_norm = c_.norm_kind == NormKind::kLayer;
#pragma omp for schedule(static)
  for (int64_t i = int64_t(first); i < int64_t(n); ++i) {
    float* x = &x_[size_t(i) * E];
    if (add_out) {
      float* out = &out_[size_t(i) * E];
      if (post_norm) ops.rms_norm(out, post_norm, c_.norm_eps, out, E);
      if (c_.residual_scale != 1.0f) ref::scale(out, c_.residual_scale, E);
      ops.add(x, out, E);
    }
    float* y = &xn_[size_t(i) * E];
    if (!w) {
      std::copy_n(x, E, y);
    } else if (layer_norm) {
      ops.layer_norm(x, w, b, c_.norm_eps, y, E);
    } else {
      ops.rms_norm(x, w, c_.norm_eps, y, E);
      if (b) ops.add(y, b, E);
    }
  }
}

// y[i] += b for each of n rows of dim values (a matmul's bias).
void Decoder::add_rows(float* y, const float* b, size_t n, size_t dim) {
#pragma omp for schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i) kernels_->ops.add(y + size_t(i) * dim, b, dim);
}

// logits = final_softcap · tanh(logit_scale · logits / final_softcap) (Granite's logits_scaling,
// Gemma 2's final soft-cap), where the model has them: in chunks of kChunk values, so that even
// one token's vocabulary (Gemma 2's 256000 tanh) is shared by the team.
void Decoder::finish_logits(float* logits, size_t rows) {
  if (c_.logit_scale == 1.0f && c_.final_softcap <= 0) return;
  const size_t total = rows * size_t(c_.n_vocab);
  const auto chunks = static_cast<int64_t>((total + kChunk - 1) / kChunk);
#pragma omp for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    float* x = logits + size_t(c) * kChunk;
    const size_t len = std::min(kChunk, total - size_t(c) * kChunk);
    if (c_.logit_scale != 1.0f) ref::scale(x, c_.logit_scale, len);
    if (c_.final_softcap > 0) kernels_->ops.softcap(x, c_.final_softcap, len);
  }
}

// x += finish(Wo · attention(q, k, v)),  xn = norm(x) · attn_norm (+ b),
// q = rope(Wq·xn + bq), k = rope(Wk·xn + bk), v = Wv·xn + bv (q/k norms before RoPE)
// (the add, and finish, happen in the next residual_norm)
void Decoder::attention_block(const LayerWeights& L, int32_t layer, size_t n) {
  const size_t D = size_t(c_.head_dim), R = size_t(c_.n_rot);
  const size_t H = size_t(c_.n_head), KV = size_t(c_.n_head_kv);
  const OpsSet& ops = kernels_->ops;
  residual_norm(L.attn_norm, L.attn_norm_b, 0, n, /*add_out=*/layer > 0,
                layer > 0 ? w_.layers[size_t(layer) - 1].post_ffw_norm : nullptr);
  matmul_shared({{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}}, xn_.data(), n);
  if (c_.qk_norm_whole && L.q_norm) {
    // OLMo 2: one RMSNorm over each token's whole q and k projections.
    const size_t q_dim = H * D, kv_dim = KV * D;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      ops.rms_norm(&q_[size_t(i) * q_dim], L.q_norm, c_.norm_eps, &q_[size_t(i) * q_dim], q_dim);
      ops.rms_norm(&k_[size_t(i) * kv_dim], L.k_norm, c_.norm_eps, &k_[size_t(i) * kv_dim], kv_dim);
    }
  }
  const float* head_q_norm = c_.qk_norm_whole ? nullptr : L.q_norm;
  const float* head_k_norm = c_.qk_norm_whole ? nullptr : L.k_norm;
  const int32_t rope_slot = layer_rope_[size_t(layer)];  // −1: this layer has no RoPE

  // Finish every head where the model has the pieces: q = rope(norm(Wq·xn + bq)), likewise k,
  // v = Wv·xn + bv (biases: Qwen2; per-head RMSNorm: Qwen3). Store each kv head's key and value
  // in its sequence's cache, in the cache's element type, at its position (F16 and Q8_0 through
  // the kernel set's row quantizers, whose bytes equal the reference's).
  const auto rope =
      c_.rope_layout == RopeLayout::kInterleaved ? ops.rope_interleaved : ops.rope_half_split;
  const auto heads = static_cast<int64_t>(n * (H + KV));
#pragma omp for schedule(static)
  for (int64_t job = 0; job < heads; ++job) {
    const size_t i = size_t(job) / (H + KV), h = size_t(job) % (H + KV);
    const float* cs = rope_slot >= 0 ? &rope_[(size_t(rope_slot) * n + i) * R] : nullptr;
    if (h < H) {
      float* q = &q_[(i * H + h) * D];
      if (L.bq) ops.add(q, L.bq + h * D, D);
      if (head_q_norm) ops.rms_norm(q, head_q_norm, c_.norm_eps, q, D);
      if (cs) rope(q, cs, R);
      continue;
    }
    const size_t g = h - H;
    KvCache& cache = *rows_[i].cache;
    const int32_t pos = rows_[i].pos;
    const KvElement element = cache.element();
    const bool f16 = element == KvElement::kF16;
    const size_t head_bytes = kv_row_bytes(element, D);  // one kv head's part of a row
    float *k = &k_[(i * KV + g) * D], *v = &v_[(i * KV + g) * D];
    if (L.bk) ops.add(k, L.bk + g * D, D);
    if (L.bv) ops.add(v, L.bv + g * D, D);
    if (head_k_norm) ops.rms_norm(k, head_k_norm, c_.norm_eps, k, D);
    if (cs) rope(k, cs, R);
    for (auto [src, dst] :
         {std::pair{k, cache.k_row(layer, pos)}, std::pair{v, cache.v_row(layer, pos)}}) {
      uint8_t* head = dst + g * head_bytes;
      if (element == KvElement::kQ8_0)
        kernels_->quantize_row(DType::kQ8_0, src, head, D);
      else if (f16)
        kernels_->quantize_row(DType::kF16, src, head, D);
      else
        std::copy_n(src, D, reinterpret_cast<float*>(head));
    }
  }

  attend(layer, n);
#pragma omp barrier
  matmul(L.wo, attn_.data(), n, out_.data());
  if (L.bo) add_rows(out_.data(), L.bo, n, size_t(c_.n_embd));
}

// attn_ = softmax(q · kᵀ) · v for every token's query heads over its sequence's cache (the
// rows stored above).
void Decoder::attend(int32_t layer, size_t n) {
  const size_t D = size_t(c_.head_dim);
  const size_t H = size_t(c_.n_head), KV = size_t(c_.n_head_kv);
  const OpsSet& ops = kernels_->ops;
  // Causal attention: the token at position p sees positions [0, p], or only the last `window`
  // of them (sliding-window layers). Query head h reads kv head h / (H / KV) (grouped-query
  // attention). Scores are scaled by 1/√D unless the model says otherwise, and soft-capped where
  // it asks (attention_softcapped; a Q8_0 cache has one op for both). Each token reads its own
  // sequence's cache.
  const float scale = c_.attention_scale > 0 ? c_.attention_scale : 1.0f / std::sqrt(float(D));
  const float cap = c_.attn_softcap;
  const int32_t window = c_.window(layer);
  const auto key_count = [&](size_t i) {
    const int32_t pos = rows_[i].pos;
    return size_t(pos + 1 - (window > 0 ? std::max(0, pos + 1 - window) : 0));
  };
  const size_t G = H / KV;
  const auto kv_rows = [&](size_t i, size_t g) {
    const KvCache& cache = *rows_[i].cache;
    const size_t head_bytes = kv_row_bytes(cache.element(), D);
    const auto first = int32_t(size_t(rows_[i].pos + 1) - key_count(i));
    std::pair rows{cache.k_rows(layer, first), cache.v_rows(layer, first)};
    rows.first.offset += g * head_bytes;
    rows.second.offset += g * head_bytes;
    return rows;
  };
  // Token i's query heads [h0, h0 + heads), all reading kv head g.
  const size_t run = ops.attention_heads != nullptr && cap == 0 ? std::min<size_t>(G, 2) : 1;
  const auto attend_heads = [&](size_t i, size_t g, size_t h0, size_t heads) {
    const KvElement element = rows_[i].cache->element();
    const bool f16 = element == KvElement::kF16;
    const size_t n_keys = key_count(i);
    float* scores = &scores_[size_t(omp_get_thread_num()) * scores_stride_];
    const auto [keys, values] = kv_rows(i, g);
    if (heads > 1 && element != KvElement::kQ8_0) {
      ops.attention_heads(&q_[(i * H + h0) * D], heads, keys, values, f16, n_keys, D, scale,
                          &attn_[(i * H + h0) * D]);
      return;
    }
    for (size_t h = h0; h < h0 + heads; ++h) {
      const float* q = &q_[(i * H + h) * D];
      float* out = &attn_[(i * H + h) * D];
      if (element == KvElement::kQ8_0) {
        ops.attention_q8_0(q, keys, values, n_keys, D, scale, cap, scores, out);
      } else if (cap > 0) {
        ops.attention_softcapped(q, keys, values, f16, n_keys, D, scale, cap, scores, out);
      } else {
        ops.attention(q, keys, values, f16, n_keys, D, scale, scores, out);
      }
    }
  };
  const auto job_cost = [&](size_t i, size_t heads) { return double((key_count(i) + 8) * heads); };

  // A prompt (F16 or F32 cache, no window shorter than its positions): one job per (tile of
  // kCausalTile tokens, kv head), whose runs of consecutive positions of one sequence go to
  // attention_causal, which converts each key and value row once for all their tokens and heads
  // (SmolLM2-135M Q4_0 pp512 on 2 threads: 1557-1580 -> 1742-1773 t/s). Shorter runs, which
  // would convert rows for few rows' use, go token by token, and so does a batch that is mostly
  // other sequences' single tokens (decode).
  constexpr size_t kCausalTile = 16, kMinCausalTokens = 4;
  size_t continuing = 0;  // tokens that follow the one before in the same sequence
  for (size_t i = 1; i < n; ++i) {
    continuing += rows_[i].cache == rows_[i - 1].cache && rows_[i].pos == rows_[i - 1].pos + 1;
  }
  // A window no token's keys reach past (Gemma 2's 4096 over a shorter prompt) changes nothing.
  bool windowed = false;
  for (size_t i = 0; i < n && window > 0; ++i) windowed = windowed || rows_[i].pos >= window;
  if (ops.attention_causal != nullptr && !windowed && 2 * continuing >= n) {
    const size_t tiles = (n + kCausalTile - 1) / kCausalTile;
    const auto tile_tokens = [&](size_t tile) {
      return std::pair{tile * kCausalTile, std::min(n, (tile + 1) * kCausalTile)};
    };
    const auto [begin, end] = share_of(int64_t(tiles * KV), [&](int64_t job) {
      const auto [i0, i1] = tile_tokens(size_t(job) / KV);
      double cost = 0;
      for (size_t i = i0; i < i1; ++i) cost += job_cost(i, G);
      return cost;
    });
    for (int64_t job = begin; job < end; ++job) {
      const size_t g = size_t(job) % KV;
      const auto [i0, i1] = tile_tokens(size_t(job) / KV);
      for (size_t i = i0, next; i < i1; i = next) {
        const KvCache* cache = rows_[i].cache;
        for (next = i + 1;
             next < i1 && rows_[next].cache == cache && rows_[next].pos == rows_[next - 1].pos + 1;
             ++next) {
        }
        if (next - i < kMinCausalTokens || cache->element() == KvElement::kQ8_0) {
          for (size_t t = i; t < next; ++t) {
            for (size_t h0 = 0; h0 < G; h0 += run)
              attend_heads(t, g, g * G + h0, std::min(run, G - h0));
          }
          continue;
        }
        const auto [keys, values] = kv_rows(i, g);
        ops.attention_causal(&q_[(i * H + g * G) * D], H * D, G, next - i, key_count(i), keys,
                             values, cache->element() == KvElement::kF16, D, scale, cap,
                             &attn_[(i * H + g * G) * D], H * D);
      }
    }
  } else {
    // One job per (token, run of query heads that read the same kv head). Where the set has
    // attention_heads, runs are pairs (without soft-capping, over an F16 or F32 cache): the SIMD
    // sets share each loaded row between two heads (SmolLM2-135M pp512: 30 % less time in
    // attention). Larger runs would share no more and leave too few jobs for the threads in
    // decode (SmolLM2: 9 heads, 3 kv heads). Otherwise runs are single heads. A job's cost: its
    // keys, plus a few keys' worth for the call itself. Shared by cost rather than count:
    // SmolLM2-135M pp512 596 -> 686 t/s on 2 threads.
    const size_t runs_per_kv = (G + run - 1) / run, runs = KV * runs_per_kv;
    const auto run_heads = [&](size_t r) { return std::min(run, G - r % runs_per_kv * run); };
    const auto [begin, end] = share_of(int64_t(n * runs), [&](int64_t job) {
      return job_cost(size_t(job) / runs, run_heads(size_t(job) % runs));
    });
    for (int64_t job = begin; job < end; ++job) {
      const size_t i = size_t(job) / runs, r = size_t(job) % runs, g = r / runs_per_kv;
      attend_heads(i, g, g * G + r % runs_per_kv * run, run_heads(r));
    }
  }
}

// x += finish(W_down · (act(W_gate·xn) ⊙ W_up·xn)),  xn = norm(x) · ffn_norm (+ b),
// act = silu (SwiGLU) or gelu (GeGLU); or with a plain GELU MLP
// x += W_down · gelu(W_up·xn + b_up) + b_down. A parallel block (Phi-2) adds the attention output
// to x here and reuses the attention's xn: x += attn(xn) + mlp(xn).
// (the add of the MLP's output, and finish, happen in the next residual_norm)
void Decoder::mlp_block(const LayerWeights& L, size_t n) {
  const size_t F = size_t(c_.n_ff), total = n * F;
  if (c_.parallel_block) {
    const size_t E = size_t(c_.n_embd);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      kernels_->ops.add(&x_[size_t(i) * E], &out_[size_t(i) * E], E);
    }
  } else {
    residual_norm(L.ffn_norm, L.ffn_norm_b, 0, n, /*add_out=*/true, L.post_attention_norm);
  }
  const bool gated = c_.ffn_kind == FfnKind::kSwiGlu;
  if (gated) {
    matmul_shared({{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}}, xn_.data(), n);
  } else {
    matmul(L.w_up, xn_.data(), n, up_.data());
  }
  if (L.b_up) add_rows(up_.data(), L.b_up, n, F);
  if (gated) {
    glu_rows(total);
  } else {
    const auto chunks = static_cast<int64_t>((total + kChunk - 1) / kChunk);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const size_t at = size_t(c) * kChunk, len = std::min(kChunk, total - at);
      kernels_->ops.gelu(&up_[at], &gate_[at], len);
    }
  }
  matmul(L.w_down, gate_.data(), n, out_.data());
  if (L.b_down) add_rows(out_.data(), L.b_down, n, size_t(c_.n_embd));
}

// gate = silu(gate) ⊙ up over the first `total` values.
void Decoder::glu_rows(size_t total) {
  const auto chunks = static_cast<int64_t>((total + kChunk - 1) / kChunk);
#pragma omp for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t at = size_t(c) * kChunk, len = std::min(kChunk, total - at);
    if (c_.ffn_activation == FfnActivation::kGeluTanh) {
      kernels_->ops.geglu(&gate_[at], &up_[at], &gate_[at], len);
    } else {
      kernels_->ops.swiglu(&gate_[at], &up_[at], &gate_[at], len);
    }
  }
}

}  // namespace slm
