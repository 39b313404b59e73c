// Helpers shared by the GGUF tests: write bytes to a scratch file, make deterministic tensor
// bytes, and a tiny valid model to break in the malformed-file tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/format/gguf_writer.h"
#include "tests/test_data.h"

namespace slm::test {

inline std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::filesystem::path path = temp_dir() / name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  return path.string();
}

// Deterministic pseudo-random bytes (different per seed).
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (uint8_t& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

// A small valid file: a few keys of different types (including an array) and three tensors.
inline GgufWriter small_model_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "a", "bc"});
  w.set_alignment(32);
  w.add_tensor("token_embd.weight", {4, 3}, DType::kF32, pattern_bytes(48, 1));
  w.add_tensor("blk.0.attn_q.weight", {32, 2}, DType::kQ8_0, pattern_bytes(68, 2));
  w.add_tensor("output_norm.weight", {4}, DType::kF32, pattern_bytes(16, 3));
  return w;
}

}  // namespace slm::test
