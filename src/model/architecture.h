// What distinguishes each architecture slm runs, as data (DESIGN.md: a variant is data, not a
// subclass). Both config readers (GGUF metadata, config.json) and both tensor namings (GGUF,
// Hugging Face) look an architecture up here, so a new one is added in this one table.
#pragma once

#include <string>
#include <string_view>

#include "src/model/config.h"

namespace slm {

struct Architecture {
  std::string_view name;        // general.architecture, llama.cpp's name
  RopeLayout gguf_rope_layout;  // how llama.cpp's files order q/k rows (HF: always half-split)
  // Optional per-layer tensors every layer has (ModelConfig's flags of the same names).
  bool qkv_bias;
  bool qk_norm;
  // Phi-2 / Phi-3 / StarCoder2 (ModelConfig's fields of the same names).
  NormKind norm_kind = NormKind::kRms;
  bool norm_bias = false;
  FfnKind ffn_kind = FfnKind::kSwiGlu;
  bool ffn_bias = false;
  bool attn_output_bias = false;
  bool output_bias = false;
  bool parallel_block = false;
  bool fused_gate_up = false;
  // GGUF `{arch}.attention.sliding_window` applies to every layer (Phi-3).
  bool gguf_window_every_layer = false;
  // Mixture of experts in GGUF files (llama.cpp's build_moe_ffn arguments for the architecture):
  // whether the top-k router weights are renormalised when the file has no
  // `{arch}.expert_weights_norm`, and whether layers have a gated shared expert (`*_shexp`).
  bool moe_weights_norm = true;
  bool moe_shared_expert = false;
  // Gemma 1/2/3, Granite, OLMo 2, SmolLM3 (ModelConfig's fields of the same names):
  FfnActivation ffn_activation = FfnActivation::kSilu;
  bool embedding_scale_sqrt = false;  // x = embedding · √n_embd (Gemma)
  bool pre_norms = true;
  bool post_norms = false;
  bool qk_norm_whole = false;
  // Added to every RMSNorm weight of a Hugging Face checkpoint: Gemma stores w − 1 and computes
  // rms_norm(x) · (1 + w); llama.cpp's converter adds the 1, so GGUF files hold the weight used.
  float hf_norm_offset = 0.0f;
  // GGUF files: `{arch}.attention.sliding_window` applies to layer l when (l + 1) % period ≠ 0
  // (llama.cpp's pattern: Gemma 2 period 2, even layers; Gemma 3 period 6, 5 local : 1 global);
  // 0: no per-layer window. Sliding layers rotate with base `{arch}.rope.freq_base_swa`, else
  // gguf_rope_base_swa (0: the global base).
  int32_t gguf_swa_period = 0;
  float gguf_rope_base_swa = 0.0f;
  // GGUF files: layer l has no RoPE when (l + 1) % period = 0 (llama.cpp's smollm3: 4, fixed,
  // no key); 0: every layer rotates.
  int32_t gguf_no_rope_period = 0;
  // GGUF files carry Granite's multipliers: {arch}.embedding_scale, .residual_scale,
  // .attention.scale and .logit_scale (logits are divided by it).
  bool gguf_multipliers = false;
};

// Copies the architecture's per-layer flags into the config (both config readers call this).
void apply_architecture(const Architecture& arch, ModelConfig& c);

// The architecture of this general.architecture name, or nullptr.
const Architecture* find_architecture(std::string_view name);

// Copies the architecture's flags into the config (n_embd must be set).
void apply_architecture(const Architecture& arch, ModelConfig& c);

// The names find_architecture accepts, comma-separated (for error messages).
std::string supported_architectures();

}  // namespace slm
