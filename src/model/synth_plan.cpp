#include "src/model/synth_plan.h"

#include <fmt/format.h>

namespace slm::synth {

std::string_view arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama:
      return "llama";
    case Arch::kQwen2:
      return "qwen2";
    case Arch::kPhi2:
      return "phi2";
    case Arch::kGemma2:
      return "gemma2";
  }
  return "?";
}

const std::vector<Shape>& shapes() {
  // From each model's config.json: hidden_size, num_hidden_layers, num_attention_heads,
  // num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings, head_dim (where
  // it is not hidden_size / num_attention_heads), rope_theta, rms_norm_eps / layer_norm_eps,
  // tie_word_embeddings. Llama 3.2's rope_scaling (llama.cpp's
  // rope_freqs.weight) is left out: slm has no such factors yet, and both engines then compute
  // the same plain RoPE.
  // clang-format off
  static const std::vector<Shape> kShapes = {
    //  name              source                                  arch          vocab   embd layer head kv    ff     ctx    hd   rot  theta      eps   tied
    {"smollm2-135m",   "HuggingFaceTB/SmolLM2-135M",          Arch::kLlama,   49152,  576, 30,  9,  3,  1536,   8192,   0,  64, 100000.f,  1e-5f, true},
    {"qwen2.5-0.5b",   "Qwen/Qwen2.5-0.5B",                   Arch::kQwen2,  151936,  896, 24, 14,  2,  4864,  32768,   0,  64, 1000000.f, 1e-6f, true},
    {"tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0",  Arch::kLlama,   32000, 2048, 22, 32,  4,  5632,   2048,   0,  64, 10000.f,   1e-5f, false},
    {"llama-3.2-1b",   "meta-llama/Llama-3.2-1B",             Arch::kLlama,  128256, 2048, 16, 32,  8,  8192, 131072,   0,  64, 500000.f,  1e-5f, true},
    {"phi-2",          "microsoft/phi-2",                     Arch::kPhi2,    51200, 2560, 32, 32, 32, 10240,   2048,   0,  32, 10000.f,   1e-5f, false},
    {"qwen2.5-1.5b",   "Qwen/Qwen2.5-1.5B",                   Arch::kQwen2,  151936, 1536, 28, 12,  2,  8960,  32768,   0, 128, 1000000.f, 1e-6f, true},
    {"gemma-2-2b",     "google/gemma-2-2b",                   Arch::kGemma2, 256000, 2304, 26,  8,  4,  9216,   8192, 256, 256, 10000.f,   1e-6f, true},
  };
  // clang-format on
  return kShapes;
}

const Shape* find_shape(std::string_view name) {
  for (const Shape& s : shapes()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::vector<FileType>& file_types() {
  // ftype numbers: llama.cpp's llama_ftype (LLAMA_FTYPE_ALL_F32 = 0, MOSTLY_F16 = 1, ...).
  // Float types are what convert_hf_to_gguf.py writes (every matrix in that type); the others
  // are what llama-quantize makes from such a file.
  // clang-format off
  static const std::vector<FileType> kTypes = {
    {"f32",    0,  DType::kF32,  false, false},
    {"f16",    1,  DType::kF16,  false, false},
    {"bf16",   32, DType::kBF16, false, false},
    {"q8_0",   7,  DType::kQ8_0, false, false},
    {"q4_0",   2,  DType::kQ4_0, true,  false},
    {"q4_1",   3,  DType::kQ4_1, true,  false},
    {"q5_0",   8,  DType::kQ5_0, true,  false},
    {"q5_1",   9,  DType::kQ5_1, true,  false},
    {"q4_k_m", 15, DType::kQ4_K, true,  true},
    {"q5_k_m", 17, DType::kQ5_K, true,  true},
    {"q6_k",   18, DType::kQ6_K, true,  false},
  };
  // clang-format on
  return kTypes;
}

const FileType* find_by_name(const std::vector<FileType>& table, std::string_view name) {
  for (const FileType& t : table) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const FileType* find_file_type(std::string_view name) { return find_by_name(file_types(), name); }

namespace {

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int32_t i, int32_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

}  // namespace

// Declared in synth_plan.h (slm quantize uses it too).
DType k_quant_fallback(DType type) {
  switch (type) {
    case DType::kQ4_K:
      return DType::kQ5_0;
    case DType::kQ5_K:
      return DType::kQ5_1;
    case DType::kQ6_K:
      return DType::kQ8_0;
    default:
      return type;
  }
}

DType quantizer_type(const FileType& ft, Role role, int32_t layer, int32_t n_layer, uint64_t cols,
                     bool tied) {
  DType type = ft.base;
  if (role == Role::kOutput || (tied && role == Role::kTokenEmbd)) {
    // The output matrix decides the answer: more bits (the embedding too when it is shared).
    if (cols % traits(type).block_elems != 0) {
      type = DType::kQ8_0;
    } else if (type != DType::kQ8_0) {
      type = DType::kQ6_K;
    }
  } else if (ft.more_bits && (role == Role::kAttnV || role == Role::kFfnDown) &&
             use_more_bits(layer, n_layer)) {
    type = DType::kQ6_K;
  }
  if (cols % traits(type).block_elems != 0) type = k_quant_fallback(type);
  return type;
}

std::vector<TensorPlan> plan_tensors(const Shape& s, const FileType& ft) {
  std::vector<TensorPlan> out;
  const auto add = [&](std::string name, std::vector<uint64_t> dims, Role role, int32_t layer) {
    DType type = DType::kF32;  // norms and biases stay f32 in every llama.cpp file type
    if (dims.size() == 2) {
      type = ft.quantizer_rules
                 ? quantizer_type(ft, role, layer, s.n_layer, dims[0], s.tied_embeddings)
                 : ft.base;
    }
    out.push_back(TensorPlan{std::move(name), std::move(dims), role, layer, type});
  };
  const uint64_t embd = uint64_t(s.n_embd), ff = uint64_t(s.n_ff), vocab = uint64_t(s.n_vocab);
  const auto head_dim = uint64_t(synth::head_dim(s));
  const uint64_t q_dim = head_dim * uint64_t(s.n_head), kv_dim = head_dim * uint64_t(s.n_head_kv);
  const bool phi = s.arch == Arch::kPhi2, gemma2 = s.arch == Arch::kGemma2;
  const bool qkv_bias = s.arch == Arch::kQwen2 || phi;

  add("token_embd.weight", {embd, vocab}, Role::kTokenEmbd, -1);
  for (int32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    add(p + "attn_norm.weight", {embd}, Role::kNormWeight, l);
    if (phi) add(p + "attn_norm.bias", {embd}, Role::kNormBias, l);
    add(p + "attn_q.weight", {embd, q_dim}, Role::kMatrix, l);
    if (qkv_bias) add(p + "attn_q.bias", {q_dim}, Role::kBias, l);
    add(p + "attn_k.weight", {embd, kv_dim}, Role::kMatrix, l);
    if (qkv_bias) add(p + "attn_k.bias", {kv_dim}, Role::kBias, l);
    add(p + "attn_v.weight", {embd, kv_dim}, Role::kAttnV, l);
    if (qkv_bias) add(p + "attn_v.bias", {kv_dim}, Role::kBias, l);
    add(p + "attn_output.weight", {q_dim, embd}, Role::kMatrix, l);
    if (gemma2) add(p + "post_attention_norm.weight", {embd}, Role::kNormWeight, l);
    if (phi) {
      // Phi-2: the MLP reads the same normed input as attention (no ffn_norm, no gate).
      add(p + "attn_output.bias", {embd}, Role::kBias, l);
      add(p + "ffn_up.weight", {embd, ff}, Role::kMatrix, l);
      add(p + "ffn_up.bias", {ff}, Role::kBias, l);
      add(p + "ffn_down.weight", {ff, embd}, Role::kFfnDown, l);
      add(p + "ffn_down.bias", {embd}, Role::kBias, l);
    } else {
      add(p + "ffn_norm.weight", {embd}, Role::kNormWeight, l);
      add(p + "ffn_gate.weight", {embd, ff}, Role::kMatrix, l);
      add(p + "ffn_up.weight", {embd, ff}, Role::kMatrix, l);
      add(p + "ffn_down.weight", {ff, embd}, Role::kFfnDown, l);
      if (gemma2) add(p + "post_ffw_norm.weight", {embd}, Role::kNormWeight, l);
    }
  }
  add("output_norm.weight", {embd}, Role::kNormWeight, -1);
  if (phi) add("output_norm.bias", {embd}, Role::kNormBias, -1);
  if (!s.tied_embeddings) add("output.weight", {embd, vocab}, Role::kOutput, -1);
  if (phi) add("output.bias", {vocab}, Role::kBias, -1);
  return out;
}

}  // namespace slm::synth
