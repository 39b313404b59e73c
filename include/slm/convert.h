// Converting a Hugging Face model directory to a GGUF file (`slm convert`) with llama.cpp's key
// and tensor names and layouts, so slm and llama.cpp both load it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slm {

// The weight types convert_hf_model() writes, in a fixed order: "f32", "f16", "bf16", "q8_0",
// "q4_0", "q4_k", "q6_k". Every matrix gets the type (token_embd and output too); norms F32.
std::vector<std::string> convert_types();

struct ConvertOptions {
  std::string type = "f16";  // like convert_hf_to_gguf.py's default --outtype
  // Called before each tensor is written, with its index, the tensor count and its GGUF name.
  std::function<void(size_t index, size_t count, const std::string& name)> on_tensor = nullptr;
};

struct ConvertResult {
  uint64_t bytes_in = 0;   // tensor bytes in the safetensors files
  uint64_t bytes_out = 0;  // output file size
  size_t tensor_count = 0;
  // Matrices whose rows are not whole blocks of the type, as "name: type (why)"; they keep the
  // checkpoint's float type (a K-quant first tries its 32-element fallback, like llama.cpp).
  std::vector<std::string> fallbacks;
  // Why no tokenizer was written (empty when one was): no tokenizer.json, a tokenizer GGUF
  // cannot express, or a pre-tokenizer none of the GGUF names reproduces. Such a file still
  // runs with --tokenizer DIR/tokenizer.json.
  std::string tokenizer_note;
};

// Writes `out` (atomically) from the directory `dir` (config.json + safetensors). The llama
// architecture only (what read_hf_config accepts as llama); q/k rows are permuted from Hugging
// Face's half-split RoPE order to GGUF's interleaved order, as llama.cpp's converter does; a
// tied lm_head is written as no output.weight; Llama 3 RoPE scaling becomes rope_freqs.weight.
// The tokenizer keys come from tokenizer.json (see tokenizer_note). Throws InvalidArgumentError
// for an unknown type, IoError / FormatError / UnsupportedError for a directory that cannot be
// read or converted.
ConvertResult convert_hf_model(const std::string& dir, const std::string& out,
                               const ConvertOptions& options);

}  // namespace slm
