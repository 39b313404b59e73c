// The decoder forward pass: embed → N × block → norm → logits, for a batch of consecutive tokens
// of one sequence. Reads like the math; every op is a kernel call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "src/model/config.h"
#include "src/model/weights.h"
#include "src/runtime/kv_cache.h"

namespace slm {

class Decoder {
 public:
  Decoder(const ModelConfig& config, const Weights& weights) : c_(config), w_(weights) {}

  // Evaluates tokens at positions [pos0, pos0 + n), storing their keys and values in `cache`, and
  // writes logits: n rows of n_vocab when all_logits, else the last token's row only.
  // Token ids and capacity must have been checked by the caller.
  void forward(std::span<const int32_t> tokens, int32_t pos0, KvCache& cache, bool all_logits,
               float* logits, int threads);

 private:
  void reserve(size_t n_tokens, size_t max_positions, int threads);
  void attention_block(const LayerWeights& L, int32_t layer, size_t n, int32_t pos0,
                       KvCache& cache, int threads);
  void mlp_block(const LayerWeights& L, size_t n, int threads);
  void matmul(const Matrix& w, const float* x, size_t n, float* y, int threads);

  const ModelConfig& c_;
  const Weights& w_;
  // Scratch, grown when a batch is larger than any before and never shrunk, so decoding one
  // token at a time allocates nothing.
  size_t capacity_tokens_ = 0;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, out_, rope_, scores_;
  std::vector<uint8_t> act_;
};

}  // namespace slm
