// Weights from a Hugging Face checkpoint: the llama tensor names of transformers
// (model.layers.N.self_attn.q_proj.weight, ...) mapped onto the same views the GGUF path fills.
#pragma once

#include "src/format/safetensors.h"
#include "src/model/hf_config.h"
#include "src/model/weights.h"

namespace slm {

// Matrices stored as F32, F16 or BF16 are views into the mapping; norm vectors stored as F16 or
// BF16 are converted to F32 once. PyTorch's [out, in] is the decoder's rows × cols, so nothing
// is transposed, and q/k rows keep their half-split RoPE order (config.rope_layout says so).
// Throws FormatError (missing tensor, wrong shape) or UnsupportedError (a dtype slm cannot
// compute with), naming the tensor and its file.
Weights load_hf_weights(const SafetensorsCheckpoint& checkpoint, const HfConfig& config);

// The weight type a safetensors tensor is computed (or converted) as: F32, F16 or BF16 as stored.
// Throws UnsupportedError naming `file` and the tensor for any other dtype.
DType hf_weight_type(const SafetensorsTensor& t, std::string_view file);

}  // namespace slm
