// Hugging Face config.json → ModelConfig, for the architectures slm runs. Reads both transformers
// generations of keys: `rope_theta` / `rope_scaling` (≤ 4.x) and `rope_parameters` (5.x).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/model/config.h"

namespace slm {

struct HfConfig {
  ModelConfig model;
  bool tie_word_embeddings = false;  // lm_head shares model.embed_tokens
  std::vector<int32_t> eos_ids;      // eos_token_id (a number or a list), for tokenizer-less runs
};

// Throws IoError (cannot read), FormatError naming the key (malformed or missing values) or
// UnsupportedError (an architecture or feature slm cannot run, listing what it supports).
HfConfig read_hf_config(const std::string& path);

}  // namespace slm
