// What a Model holds: the mapped file(s) and everything derived from them, immutable after load.
#pragma once

#include <optional>
#include <vector>

#include "slm/model.h"
#include "src/format/gguf.h"
#include "src/format/safetensors.h"
#include "src/model/config.h"
#include "src/model/weights.h"

namespace slm {

struct Model::Impl {
  std::string path;
  // Owns the mapping the weights point into: a GGUF file or a Hugging Face directory's shards.
  std::optional<GgufFile> gguf;
  std::optional<SafetensorsCheckpoint> safetensors;
  ModelConfig config;
  Weights weights;
  std::optional<Tokenizer> tokenizer;  // absent for a directory without tokenizer.json
  // End of generation besides the tokenizer's EOS/EOT: config.json's and
  // generation_config.json's eos_token_id (Llama 3 lists several).
  std::vector<TokenId> eos_ids;
  TokenId bos_id = -1;        // generation_config.json's / config.json's bos_token_id
  std::string chat_template;  // empty when the model has none
  Pooling pooling = Pooling::kMean;  // embed()'s default (GGUF {arch}.pooling_type)
  ModelInfo info;
  // Tells models apart when a saved state is loaded, and seeds the KV pool's block hashes.
  uint64_t fingerprint = 0;
};

}  // namespace slm
