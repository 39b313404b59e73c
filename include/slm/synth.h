// Synthetic models: random weights at a real model's shapes, written as a GGUF file with
// llama.cpp's key and tensor names and a small valid tokenizer, so kernels and `slm bench` can
// be measured at real shapes without downloading a model (`slm synth`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slm {

struct SynthPreset {
  std::string name;          // e.g. "tinyllama-1.1b"
  std::string source;        // the Hugging Face model whose config.json the shapes come from
  std::string architecture;  // GGUF general.architecture, e.g. "llama", "qwen2", "phi2"
  bool runs_in_slm = false;  // whether slm can load this architecture today
};

// The presets, in a fixed order.
std::vector<SynthPreset> synth_presets();
// The weight types synthesize() can write, named like llama.cpp's file types ("q4_0",
// "q4_k_m", ...), in a fixed order.
std::vector<std::string> synth_types();

struct SynthOptions {
  std::string preset;         // a name from synth_presets()
  std::string type = "q4_0";  // a name from synth_types()
  uint64_t seed = 1;          // same seed, preset and type: the same file, byte for byte
  int32_t layers = 0;         // > 0: only this many blocks (quick tests); 0: the preset's
  int32_t vocab_size = 0;     // > 0: a smaller vocabulary (≥ 512; quick tests); 0: the preset's
  // Called after each tensor with the bytes of tensor data written so far and in all.
  std::function<void(uint64_t done, uint64_t total)> on_progress = nullptr;
};

struct SynthResult {
  uint64_t file_bytes = 0;
  uint64_t parameter_count = 0;
  uint64_t tensor_count = 0;
};

// Writes the model to `path` (atomically: PATH.tmp, then renamed). Throws InvalidArgumentError
// for an unknown preset or type or a bad override (the message lists the valid names), IoError
// when the file cannot be written.
SynthResult synthesize(const std::string& path, const SynthOptions& options);

}  // namespace slm
