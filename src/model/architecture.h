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
};

// Copies the architecture's per-layer flags into the config (both config readers call this).
void apply_architecture(const Architecture& arch, ModelConfig& c);

// The architecture of this general.architecture name, or nullptr.
const Architecture* find_architecture(std::string_view name);

// The names find_architecture accepts, comma-separated (for error messages).
std::string supported_architectures();

}  // namespace slm
