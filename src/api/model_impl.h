// What a Model holds: the mapped file and everything derived from it, immutable after load.
#pragma once

#include "slm/model.h"
#include "src/format/gguf.h"
#include "src/model/config.h"
#include "src/model/weights.h"

namespace slm {

struct Model::Impl {
  GgufFile file;  // owns the mapping the weights point into
  ModelConfig config;
  Weights weights;
  Tokenizer tokenizer;
  ModelInfo info;
};

}  // namespace slm
