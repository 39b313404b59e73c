// Picks the next token from logits. The chain is fixed: repetition penalty -> top-k ->
// temperature -> softmax -> top-p -> min-p -> seeded draw. Temperature 0 is the argmax of the
// penalized logits (ties: lowest id) and draws no random number.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "slm/tokenizer.h"

namespace slm {

struct SamplingOptions {
  float temperature = 0.8f;    // 0 = greedy (ties go to the lowest id)
  int32_t top_k = 40;          // 0 = off
  float top_p = 0.95f;         // 1 = off
  float min_p = 0.05f;         // 0 = off
  float repeat_penalty = 1.0f; // 1 = off
  int32_t repeat_last_n = 64;  // how many recent tokens the penalty looks at
  uint64_t seed = 0xC0FFEE;    // same seed, same logits -> same tokens
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // `history` holds the tokens seen so far (prompt and generated), for the repetition penalty.
  TokenId sample(std::span<const float> logits, std::span<const TokenId> history);

 private:
  struct Candidate {
    TokenId id;
    float logit;
  };
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;  // reused between calls
};

}  // namespace slm
