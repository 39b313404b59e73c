// ModelConfig: everything the decoder needs to know about a model's shape, as plain data.
// Architectures differ only in this data (DESIGN.md: a variant is data, not a subclass).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slm {

class GgufFile;
class GgufWriter;

enum class RopeLayout {
  kInterleaved,  // rotate pairs (2i, 2i+1): llama.cpp's "normal" mode, GGUF llama files
  kHalfSplit,    // rotate pairs (i, i + n_rot/2): NeoX / Hugging Face layout
};

// How every norm of the model normalises (DESIGN.md "Numerics" gives both formulas).
enum class NormKind {
  kRms,    // x / sqrt(mean(x²) + eps) · w
  kLayer,  // (x − mean) / sqrt(var + eps) · w + b   (Phi-2, StarCoder2)
};

// The feed-forward block.
enum class FfnKind {
  kSwiGlu,  // down(silu(gate·x) ⊙ up·x)
  kGelu,    // down(gelu(up·x + b_up)) + b_down, no gate (Phi-2, StarCoder2; tanh GELU)
};

enum class ExpertRouting { kSoftmaxTopK, kSparseMixer };

enum class FfnActivation {
  kSilu,      // SwiGLU: down(silu(gate·x) ⊙ up·x)
  kGeluTanh,  // GeGLU: down(gelu(gate·x) ⊙ up·x), gelu's tanh form (Gemma)
};

struct ModelConfig {
  std::string architecture;
  std::string name;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ff = 0;
  int32_t n_ctx_train = 0;
  int32_t n_rot = 0;  // rotated dims per head (≤ head_dim)
  float rope_freq_base = 10000.0f;
  float norm_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::kInterleaved;
  // Empty, or n_rot/2 divisors of the rotation frequencies (Llama 3 RoPE scaling).
  std::vector<float> rope_freq_factors;
  // Which optional tensors every layer has (the loaders require them; the decoder applies what
  // the weights hold): q/k/v biases added after their matmuls (Qwen2), and an RMSNorm over each
  // q and k head before RoPE with a [head_dim] weight shared by the heads (Qwen3).
  bool qkv_bias = false;
  bool qk_norm = false;
  // Sliding-window attention, per layer: the query at position p sees keys (p − window, p]
  // (the window counts the current token); 0 = every earlier key. Empty: no layer slides.
  std::vector<int32_t> sliding_window;

  // --- Phi-2 / Phi-3 / StarCoder2: LayerNorm, plain GELU MLP, biases, parallel block, LongRoPE.
  NormKind norm_kind = NormKind::kRms;
  bool norm_bias = false;  // every norm (attn, ffn, output) has a bias vector
  FfnKind ffn_kind = FfnKind::kSwiGlu;
  bool ffn_bias = false;          // ffn_up and ffn_down have biases
  bool attn_output_bias = false;  // attn_output has a bias
  bool output_bias = false;       // the logits have a bias (lm_head.bias)
  // x += attn(norm(x)) + mlp(norm(x)): both branches read the one attn_norm (Phi-2; no ffn_norm).
  bool parallel_block = false;
  bool fused_gate_up = false;  // ffn_up holds 2·n_ff rows: the gate's, then up's (Phi-3)
  // LongRoPE (Phi-3): rope_freq_factors above are the short factors; a forward pass whose last
  // position is ≥ rope_long_from uses these instead (transformers' rule, per call), and
  // rope_attn_factor multiplies cos and sin (transformers' attention_factor).
  std::vector<float> rope_freq_factors_long;
  int32_t rope_long_from = 0;
  float rope_attn_factor = 1.0f;

  // Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE): with n_expert > 0 every layer's MLP is
  // n_expert SwiGLU experts of n_ff_expert rows, of which each token runs the n_expert_used
  // with the largest router probabilities p = softmax(W_router·xn), weighted by p (divided by
  // their sum when expert_weights_norm), plus, when n_ff_shared > 0, a shared SwiGLU expert
  // scaled by sigmoid(w_shared_gate·xn) (Qwen2-MoE).
  int32_t n_expert = 0;
  int32_t n_expert_used = 0;
  int32_t n_ff_expert = 0;
  int32_t n_ff_shared = 0;
  bool expert_weights_norm = false;
  // How the router's logits s pick experts. kSoftmaxTopK: as above. kSparseMixer (transformers'
  // PhiMoE, inference): expert k is the largest s_e not yet chosen, m = s_e, and its weight is
  // softmax over the experts j not chosen before and not masked, where j is masked when
  // (m − s_j) / max(|s_j|, m) > 2·router_jitter; weights are not renormalised.
  ExpertRouting expert_routing = ExpertRouting::kSoftmaxTopK;
  float router_jitter = 0.0f;

  int32_t window(int32_t layer) const {
    return sliding_window.empty() ? 0 : sliding_window[size_t(layer)];
  }

  // Gemma 1/2/3, Granite, OLMo 2, SmolLM3: scalings, norm placements and per-layer RoPE.
  FfnActivation ffn_activation = FfnActivation::kSilu;
  float embedding_scale = 1.0f;  // x = embedding · s (Gemma: √n_embd, Granite: multiplier)
  float residual_scale = 1.0f;   // x += s · block output (Granite residual_multiplier)
  float attention_scale = 0.0f;  // scores = s · q·k; 0: 1/√head_dim
  float attn_softcap = 0.0f;     // scores = cap · tanh(scores / cap) when > 0 (Gemma 2)
  float final_softcap = 0.0f;    // logits = cap · tanh(logits / cap) when > 0 (Gemma 2)
  float logit_scale = 1.0f;      // logits = s · logits (Granite: 1 / logits_scaling)
  // Which optional tensors every layer has: no attn_norm / ffn_norm before the blocks (OLMo 2),
  // RMSNorms on the attention and MLP outputs before their residual adds (post_attention_norm,
  // post_ffw_norm: Gemma 2/3, OLMo 2), q/k norms over the whole projection ([n_head·head_dim],
  // [n_head_kv·head_dim]) instead of per head (OLMo 2; with qk_norm).
  bool pre_norms = true;
  bool post_norms = false;
  bool qk_norm_whole = false;
  float norm_weight_offset = 0.0f;  // added to every RMSNorm weight at load (Gemma HF: 1)
  // Per layer RoPE base; 0: the layer does not rotate q/k (SmolLM3). Empty: every layer uses
  // rope_freq_base. Gemma 3's sliding layers use their own base.
  std::vector<float> layer_rope_base;
  // Per layer linear RoPE scaling: positions divided by this factor (θ_i / f); empty: 1 on every
  // layer. Gemma 3 scales its global layers only.
  std::vector<float> layer_rope_linear;

  float rope_base(int32_t layer) const {
    return layer_rope_base.empty() ? rope_freq_base : layer_rope_base[size_t(layer)];
  }
  float rope_linear(int32_t layer) const {
    return layer_rope_linear.empty() ? 1.0f : layer_rope_linear[size_t(layer)];
  }
};

// Whether read_config accepts files of this general.architecture.
bool is_supported_architecture(std::string_view architecture);

// Reads and validates the hyper-parameters of a GGUF file. Throws UnsupportedError for an
// architecture slm does not know, FormatError for missing or inconsistent values.
ModelConfig read_config(const GgufFile& file);

// Writes the core hyper-parameters read_config reads back (counts, sizes, RoPE base and
// dimensions, norm epsilon), for the tools that make GGUF files (convert, synth).
void write_core_hparams(GgufWriter& w, const ModelConfig& c);

}  // namespace slm
