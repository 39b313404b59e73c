// Hugging Face (transformers) tensor names, per architecture, for the names llama.cpp's GGUF
// files use — the one map both the directory loader and `slm convert` read.
#pragma once

#include <string>
#include <string_view>

namespace slm {

// The checkpoint name of the tensor GGUF calls `gguf_name` ("blk.3.attn_q.weight" →
// "model.layers.3.self_attn.q_proj.weight") in an `architecture` checkpoint; empty when there is
// none.
std::string hf_tensor_name(std::string_view architecture, std::string_view gguf_name);

}  // namespace slm
