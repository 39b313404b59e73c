// The mixture-of-experts feed-forward block (Mixtral, Qwen2-MoE, Qwen3-MoE, PhiMoE), in place of
// the dense MLP: each token runs only the experts its router picks.
#include <algorithm>
#include <cmath>

#include "src/graph/decoder.h"

namespace slm {

// PhiMoE's sparsemixer at inference (ModelConfig::expert_routing states it): from the raw
// router logits s, each pick takes the largest s_e not chosen yet, m = s_e, weighted by
// 1 / Σ exp(s_j − m) over the j not chosen before and not masked by
// (m − s_j) / max(|s_j|, m) > 2·jitter (e itself contributes exp(0) = 1).
void Decoder::route_sparsemixer(const float* s, int32_t* chosen, float* weight) const {
  const size_t X = size_t(c_.n_expert), K = size_t(c_.n_expert_used);
  const float limit = 2 * c_.router_jitter;
  for (size_t j = 0; j < K; ++j) {
    const auto taken = [&](size_t e) {
      return std::find(chosen, chosen + j, int32_t(e)) != chosen + j;
    };
    size_t best = X;
    for (size_t e = 0; e < X; ++e) {
      if (!taken(e) && (best == X || s[e] > s[best])) best = e;
    }
    const float m = s[best];
    float sum = 0;
    for (size_t e = 0; e < X; ++e) {
      if (taken(e) || (m - s[e]) / std::max(std::fabs(s[e]), m) > limit) continue;
      sum += std::exp(s[e] - m);
    }
    chosen[j] = int32_t(best);
    weight[j] = 1.0f / sum;
  }
}

// p = softmax(W_router · xn); the token's experts are the n_expert_used largest p_e (ties: the
// lowest e), each weighted by p_e, or by p_e / Σ p of the chosen when expert_weights_norm
// (Mixtral's softmax of the top k). Then
//   x += Σ_chosen w_e · W_down,e · (silu(W_gate,e·xn) ⊙ W_up,e·xn)
//        [+ sigmoid(w_shared_gate·xn) · shared SwiGLU expert(xn)]   (xn = norm(x) · ffn_norm)
// (the add happens in the next residual_norm). The terms are added in the order the experts were
// chosen (largest p first), as llama.cpp does.
//
// The matmuls group the tokens routed to each expert: their xn rows are gathered, ordered by
// expert, into moe_x_, so an expert's weights are read once per batch, not once per token. Every
// value is computed by one thread in a fixed order, so the result does not depend on the team.
void Decoder::moe_block(const LayerWeights& L, size_t n) {
  const size_t E = size_t(c_.n_embd), X = size_t(c_.n_expert), K = size_t(c_.n_expert_used);
  const size_t F = size_t(c_.n_ff_expert), routed = n * K;
  const OpsSet& ops = kernels_->ops;
  residual_norm(L.ffn_norm, L.ffn_norm_b, 0, n, /*add_out=*/true, L.post_attention_norm);
  matmul(L.router, xn_.data(), n, router_.data());

  const auto n_tok = static_cast<int64_t>(n);
  const bool sparsemixer = c_.expert_routing == ExpertRouting::kSparseMixer;
#pragma omp for schedule(static)
  for (int64_t i = 0; i < n_tok; ++i) {
    float* p = &router_[size_t(i) * X];
    int32_t* chosen = &route_expert_[size_t(i) * K];
    float* weight = &route_weight_[size_t(i) * K];
    if (sparsemixer) {
      route_sparsemixer(p, chosen, weight);
      continue;
    }
    ops.softmax(p, X);
    float sum = 0;
    for (size_t j = 0; j < K; ++j) {
      size_t best = X;
      for (size_t e = 0; e < X; ++e) {
        if (std::find(chosen, chosen + j, int32_t(e)) != chosen + j) continue;
        if (best == X || p[e] > p[best]) best = e;
      }
      chosen[j] = int32_t(best);
      weight[j] = p[best];
      sum += p[best];
    }
    if (c_.expert_weights_norm) {
      for (size_t j = 0; j < K; ++j) weight[j] /= sum;
    }
  }

  // Rows grouped by expert: expert e owns rows [expert_first_[e], expert_first_[e + 1]), in
  // token order. O(n_expert · n · k) bookkeeping, done by one thread (the implicit barrier
  // publishes it).
#pragma omp single
  {
    int32_t row = 0;
    for (size_t e = 0; e < X; ++e) {
      expert_first_[e] = row;
      for (size_t r = 0; r < routed; ++r) {
        if (size_t(route_expert_[r]) != e) continue;
        route_row_[r] = row;
        row_token_[size_t(row)] = int32_t(r / K);
        ++row;
      }
    }
    expert_first_[X] = row;
  }

  const auto n_rows = static_cast<int64_t>(routed);
#pragma omp for schedule(static)
  for (int64_t r = 0; r < n_rows; ++r) {
    std::copy_n(&xn_[size_t(row_token_[size_t(r)]) * E], E, &moe_x_[size_t(r) * E]);
  }

  // Each expert's SwiGLU on its rows: gate and up, then one silu(gate) ⊙ up pass, then down.
  for (size_t e = 0; e < X; ++e) {
    const size_t first = size_t(expert_first_[e]), count = size_t(expert_first_[e + 1]) - first;
    if (count == 0) continue;
    matmul(L.expert_gate[e], &moe_x_[first * E], count, &gate_[first * F]);
    matmul(L.expert_up[e], &moe_x_[first * E], count, &up_[first * F]);
  }
  glu_rows(routed * F);
  for (size_t e = 0; e < X; ++e) {
    const size_t first = size_t(expert_first_[e]), count = size_t(expert_first_[e + 1]) - first;
    if (count == 0) continue;
    matmul(L.expert_down[e], &gate_[first * F], count, &moe_y_[first * E]);
  }

  // The shared expert (Qwen2-MoE) runs on every token; its output goes to moe_x_, free now.
  const bool shared = L.shared_gate.data != nullptr;
  if (shared) {
    matmul_shared({{&L.shared_expert_gate, shared_gate_.data()},
                   {&L.shared_gate, gate_.data()},
                   {&L.shared_up, up_.data()}},
                  xn_.data(), n);
    glu_rows(n * size_t(c_.n_ff_shared));
    matmul(L.shared_down, gate_.data(), n, moe_x_.data());
  }

#pragma omp for schedule(static)
  for (int64_t i = 0; i < n_tok; ++i) {
    float* out = &out_[size_t(i) * E];
    std::fill_n(out, E, 0.0f);
    for (size_t j = 0; j < K; ++j) {
      const size_t r = size_t(i) * K + j;
      ops.add_scaled(out, &moe_y_[size_t(route_row_[r]) * E], route_weight_[r], E);
    }
    if (shared) {
      const float g = 1.0f / (1.0f + std::exp(-shared_gate_[size_t(i)]));  // sigmoid
      ops.add_scaled(out, &moe_x_[size_t(i) * E], g, E);
    }
  }
}

}  // namespace slm
