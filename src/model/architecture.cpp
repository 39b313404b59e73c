#include "src/model/architecture.h"

#include <cmath>

namespace slm {
namespace {

constexpr Architecture kArchitectures[] = {
    {"llama", RopeLayout::kInterleaved, false, false},  // llama.cpp's "normal" RoPE
    {"qwen2", RopeLayout::kHalfSplit, true, false},     // llama.cpp's NEOX RoPE
    {"qwen3", RopeLayout::kHalfSplit, false, true},
    {.name = "gemma",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = false,
     .ffn_activation = FfnActivation::kGeluTanh,
     .embedding_scale_sqrt = true,
     .hf_norm_offset = 1.0f},
    {.name = "gemma2",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = false,
     .ffn_activation = FfnActivation::kGeluTanh,
     .embedding_scale_sqrt = true,
     .post_norms = true,
     .hf_norm_offset = 1.0f,
     .gguf_swa_period = 2},
    {.name = "gemma3",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = true,
     .ffn_activation = FfnActivation::kGeluTanh,
     .embedding_scale_sqrt = true,
     .post_norms = true,
     .hf_norm_offset = 1.0f,
     .gguf_swa_period = 6,
     .gguf_rope_base_swa = 10000.0f},
    {.name = "granite",
     .gguf_rope_layout = RopeLayout::kInterleaved,
     .qkv_bias = false,
     .qk_norm = false,
     .gguf_multipliers = true},
    {.name = "olmo2",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = true,
     .pre_norms = false,
     .post_norms = true,
     .qk_norm_whole = true},
    {.name = "smollm3",
     .gguf_rope_layout = RopeLayout::kInterleaved,
     .qkv_bias = false,
     .qk_norm = false,
     .gguf_no_rope_period = 4},
};

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const Architecture& a : kArchitectures) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

void apply_architecture(const Architecture& arch, ModelConfig& c) {
  c.qkv_bias = arch.qkv_bias;
  c.qk_norm = arch.qk_norm;
  c.ffn_activation = arch.ffn_activation;
  if (arch.embedding_scale_sqrt) c.embedding_scale = std::sqrt(float(c.n_embd));
  c.pre_norms = arch.pre_norms;
  c.post_norms = arch.post_norms;
  c.qk_norm_whole = arch.qk_norm_whole;
}

std::string supported_architectures() {
  std::string out;
  for (const Architecture& a : kArchitectures) {
    out += (out.empty() ? "" : ", ") + std::string(a.name);
  }
  return out;
}

}  // namespace slm
