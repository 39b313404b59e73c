// The decoder forward pass: embed → N × block → norm → logits, for a batch of consecutive tokens
// of one sequence. Reads like the math; every op is a kernel call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/dispatch.h"
#include "src/model/config.h"
#include "src/model/weights.h"
#include "src/runtime/kv_cache.h"

namespace slm {

class Decoder {
 public:
  Decoder(const ModelConfig& config, const Weights& weights) : c_(config), w_(weights) {}

  // Evaluates tokens at positions [pos0, pos0 + n), storing their keys and values in `cache`, and
  // writes logits: n rows of n_vocab when all_logits, else the last token's row only. `hidden`,
  // when given, gets the same rows of the final hidden state (after the output norm, n_embd
  // floats each: what embeddings pool); logits may then be null (no output matmul).
  // Token ids and capacity must have been checked by the caller.
  void forward(std::span<const int32_t> tokens, int32_t pos0, KvCache& cache, bool all_logits,
               float* logits, int threads, float* hidden = nullptr);

  // Bytes of scratch held (tests check that decoding does not grow it after the first step).
  size_t scratch_bytes() const;

 private:
  // Everything below runs on every thread of forward()'s one team and shares the work.
  void reserve(size_t n_tokens, size_t max_positions, int threads);
  void residual_norm(const float* w, size_t first, size_t n, bool add_out);
  void attention_block(const LayerWeights& L, int32_t layer, size_t n, int32_t pos0,
                       KvCache& cache);
  void mlp_block(const LayerWeights& L, size_t n);
  void matmul(const Matrix& w, const float* x, size_t n, float* y);

  const ModelConfig& c_;
  const Weights& w_;
  const KernelSet* kernels_ = nullptr;  // the dispatched kernels, chosen before the team starts
  // Scratch, grown when a batch is larger than any before and never shrunk, so decoding one
  // token at a time allocates nothing. scores_ holds one row of cache capacity per thread.
  size_t capacity_tokens_ = 0;
  size_t work_per_token_ = 0;  // multiply-adds of the weight matrices, computed on first use
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, out_, rope_, scores_;
  std::vector<uint8_t> act_;
};

}  // namespace slm
