// The decoder forward pass: embed → N × block → norm → logits, for a batch of rows: runs of
// consecutive tokens of one or more sequences. Reads like the math; every op is a kernel call.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <utility>
#include <vector>

#include "kernels/dispatch.h"
#include "src/model/config.h"
#include "src/model/weights.h"
#include "src/runtime/kv_cache.h"

namespace slm {

// One sequence's part of a forward pass: its tokens at positions [pos0, pos0 + n) of `cache`.
// It wants the logits (or hidden rows) of every one of its tokens when all_logits, else of its
// last token only.
struct DecoderSegment {
  std::span<const int32_t> tokens;
  int32_t pos0 = 0;
  KvCache* cache = nullptr;
  bool all_logits = false;
};

class Decoder {
 public:
  Decoder(const ModelConfig& config, const Weights& weights) : c_(config), w_(weights) {}

  // Evaluates every segment's tokens in one pass (several sequences, e.g. the next token of each
  // of N conversations, or one prompt beside them): the weight matrices are read once for all
  // rows, each row attends over its own sequence's cache. Writes the rows each segment wants,
  // segment after segment, to logits (n_vocab floats each) and, when given, hidden (n_embd each;
  // logits may then be null). Every row's values are bit-identical to evaluating its segment
  // alone. There is at least one segment, each with tokens (checked by the caller, like ids and
  // capacity). Caches must be distinct; each is prepare()d here, in order: a caller that must not
  // leave earlier caches grown when a later one runs out of memory prepares them first.
  void forward(std::span<const DecoderSegment> segments, float* logits, int threads,
               float* hidden = nullptr);

  // Evaluates tokens at positions [pos0, pos0 + n), storing their keys and values in `cache`, and
  // writes logits: n rows of n_vocab when all_logits, else the last token's row only. `hidden`,
  // when given, gets the same rows of the final hidden state (after the output norm, n_embd
  // floats each: what embeddings pool); logits may then be null (no output matmul).
  // Token ids and capacity must have been checked by the caller.
  void forward(std::span<const int32_t> tokens, int32_t pos0, KvCache& cache, bool all_logits,
               float* logits, int threads, float* hidden = nullptr) {
    const DecoderSegment segment{tokens, pos0, &cache, all_logits};
    forward(std::span(&segment, 1), logits, threads, hidden);
  }

  // Bytes of scratch held (tests check that decoding does not grow it after the first step).
  size_t scratch_bytes() const;

 private:
  // Everything below runs on every thread of forward()'s one team and shares the work.
  void reserve(size_t n_tokens, size_t max_positions, int threads);
  void residual_norm(const float* w, const float* b, size_t first, size_t n, bool add_out,
                     const float* post_norm = nullptr);
  void add_rows(float* y, const float* b, size_t n, size_t dim);
  void attention_block(const LayerWeights& L, int32_t layer, size_t n);
  void attend(int32_t layer, size_t n);  // attention_block's attention over the cache
  void mlp_block(const LayerWeights& L, size_t n);
  void moe_block(const LayerWeights& L, size_t n);  // decoder_moe.cpp
  void route_sparsemixer(const float* logits, int32_t* chosen, float* weight) const;
  // gate = act(gate) ⊙ up over `total` values: SwiGLU or GeGLU (ModelConfig::ffn_activation).
  void glu_rows(size_t total);
  void finish_logits(float* logits, size_t rows);
  void matmul(const Matrix& w, const float* x, size_t n, float* y);
  size_t activation_bytes(size_t n, int team) const;
  // y_i = w_i · x for matrices with the same x: one conversion of x and one step for their rows.
  void matmul_shared(std::initializer_list<std::pair<const Matrix*, float*>> products,
                     const float* x, size_t n);
  // x = token's row of token_embd, as floats (whatever its layout).
  void embedding_row(int32_t token, float* x) const;

  const ModelConfig& c_;
  const Weights& w_;
  const KernelSet* kernels_ = nullptr;  // the dispatched kernels, chosen before the team starts
  // Scratch, grown when a batch is larger than any before and never shrunk, so decoding one
  // token at a time allocates nothing. scores_ holds one row of cache capacity per thread.
  size_t capacity_tokens_ = 0;
  int act_team_ = 0;  // act_ holds the matmuls' scratch for capacity_tokens_ in a team this large
  size_t work_per_token_ = 0;  // multiply-adds of the weight matrices, computed on first use
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, out_, rope_, scores_;
  // Grown by resize, so its first kMatmulScheduleBytes are zero before the first matmul and left
  // by each call for the next, as a team's matmuls need (kernels/matmul.h).
  std::vector<uint8_t> act_;
  // The pass's rows: token, position, sequence cache, and whether it rotates with LongRoPE's long
  // factors (decided per sequence); the rows whose logits are wanted, in order; and the stride of
  // scores_ per thread (the largest capacity of the pass's caches).
  struct Row {
    int32_t token, pos;
    KvCache* cache;
    bool long_rope;
  };
  std::vector<Row> rows_;
  std::vector<int32_t> wanted_;
  size_t scores_stride_ = 0;
  // Mixture of experts (n × n_expert_used routed rows, grouped by expert; see moe_block).
  std::vector<float> router_, route_weight_, moe_x_, moe_y_, shared_gate_;
  std::vector<int32_t> route_expert_, route_row_, row_token_, expert_first_;
  // The distinct RoPE kinds (base, linear scaling) of the layers, their frequency divisors (empty:
  // none), and which kind each layer uses (−1: no RoPE); rope_ holds one table per kind:
  // [kind][token][n_rot].
  struct RopeKind {
    float base, linear;
    bool operator==(const RopeKind&) const = default;
  };
  std::vector<RopeKind> rope_kinds_;
  std::vector<std::vector<float>> rope_factors_;
  std::vector<int32_t> layer_rope_;
};

}  // namespace slm
