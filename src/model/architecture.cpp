#include "src/model/architecture.h"

#include <cmath>

namespace slm {
namespace {

constexpr Architecture kArchitectures[] = {
    {"llama", RopeLayout::kInterleaved, false, false},  // llama.cpp's "normal" RoPE
    {"qwen2", RopeLayout::kHalfSplit, true, false},     // llama.cpp's NEOX RoPE
    {"qwen3", RopeLayout::kHalfSplit, false, true},
    // Phi-2: LayerNorm, fused or separate q/k/v with biases, partial NeoX RoPE, parallel block.
    {.name = "phi2",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = true,
     .qk_norm = false,
     .norm_kind = NormKind::kLayer,
     .norm_bias = true,
     .ffn_kind = FfnKind::kGelu,
     .ffn_bias = true,
     .attn_output_bias = true,
     .output_bias = true,
     .parallel_block = true},
    // Phi-3: fused q/k/v and gate/up without biases, sliding window on every layer.
    {.name = "phi3",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = false,
     .fused_gate_up = true,
     .gguf_window_every_layer = true},
    {.name = "starcoder2",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = true,
     .qk_norm = false,
     .norm_kind = NormKind::kLayer,
     .norm_bias = true,
     .ffn_kind = FfnKind::kGelu,
     .ffn_bias = true,
     .attn_output_bias = true},
    // Mixture of experts (llama-moe/Mixtral is "llama" with expert_count > 0).
    {.name = "qwen2moe",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = true,
     .qk_norm = false,
     .moe_weights_norm = false,
     .moe_shared_expert = true},
    // llama.cpp's graph for PhiMoE (build_phi3): RMSNorm plus a bias, softmax top-k.
    {.name = "phimoe",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = true,
     .qk_norm = false,
     .norm_bias = true,
     .attn_output_bias = true,
     .output_bias = true},
    {.name = "qwen3moe",
     .gguf_rope_layout = RopeLayout::kHalfSplit,
     .qkv_bias = false,
     .qk_norm = true},
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
  c.rope_layout = arch.gguf_rope_layout;
  c.qkv_bias = arch.qkv_bias;
  c.qk_norm = arch.qk_norm;
  c.norm_kind = arch.norm_kind;
  c.norm_bias = arch.norm_bias;
  c.ffn_kind = arch.ffn_kind;
  c.ffn_bias = arch.ffn_bias;
  c.attn_output_bias = arch.attn_output_bias;
  c.output_bias = arch.output_bias;
  c.parallel_block = arch.parallel_block;
  c.fused_gate_up = arch.fused_gate_up;
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
