// Weights from a Hugging Face checkpoint: transformers' tensor names (hf_names.h) looked up for
// the GGUF names the one loader (weights.h) asks for.
#pragma once

#include "src/format/safetensors.h"
#include "src/model/hf_config.h"
#include "src/model/weights.h"

namespace slm {

// Matrices stored as F32, F16 or BF16 are views into the mapping. PyTorch's [out, in] is the
// decoder's rows × cols, so nothing is transposed, and q/k rows keep their half-split RoPE order
// (config.rope_layout says so). A tied checkpoint has no output.weight (even when it stores a
// copy of lm_head, transformers uses the embedding); an untied one must have lm_head.
class HfTensorSource final : public TensorSource {
 public:
  HfTensorSource(const SafetensorsCheckpoint& checkpoint, const HfConfig& config)
      : checkpoint_(checkpoint), config_(config) {}
  std::optional<SourceTensor> find(const std::string& gguf_name) const override;
  std::string missing(const std::string& gguf_name) const override;

 private:
  const SafetensorsCheckpoint& checkpoint_;
  const HfConfig& config_;
};

// The weight type a safetensors tensor is computed (or converted) as: F32, F16 or BF16 as stored.
// Throws UnsupportedError naming `file` and the tensor for any other dtype.
DType hf_weight_type(const SafetensorsTensor& t, std::string_view file);

}  // namespace slm
