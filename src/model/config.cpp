#include "src/model/config.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "src/model/architecture.h"

namespace slm {
namespace {

// Reads `{arch}.{suffix}` as a positive int32; `fallback` when absent (0 = required).
int32_t read_count(const GgufFile& file, const std::string& arch, const char* suffix,
                   int64_t fallback = 0) {
  const std::string key = arch + "." + suffix;
  const std::optional<uint64_t> value = file.get_uint(key);
  if (!value && fallback > 0) return static_cast<int32_t>(fallback);
  if (!value) throw FormatError(fmt::format("{}: missing metadata key '{}'", file.path(), key));
  if (*value == 0 || *value > uint64_t(std::numeric_limits<int32_t>::max())) {
    throw FormatError(fmt::format("{}: metadata '{}' = {} is out of range", file.path(), key, *value));
  }
  return static_cast<int32_t>(*value);
}

float read_float(const GgufFile& file, const std::string& key, float fallback) {
  const std::optional<double> value = file.get_float(key);
  return value ? static_cast<float>(*value) : fallback;
}

void check(bool ok, const GgufFile& file, const std::string& what) {
  if (!ok) throw FormatError(fmt::format("{}: inconsistent hyper-parameters: {}", file.path(), what));
}

// Llama 3 RoPE scaling in GGUF: the optional tensor rope_freqs.weight holds n_rot/2 divisors of
// the rotation frequencies (llama.cpp's converter computes them from config.json's rope_scaling).
std::vector<float> read_rope_freq_factors(const GgufFile& file, const ModelConfig& c) {
  const GgufTensor* t = file.find_tensor("rope_freqs.weight");
  if (t == nullptr) return {};
  const uint64_t n = uint64_t(c.n_rot / 2);
  check(
      t->dims == std::vector<uint64_t>{n}, file,
      fmt::format("tensor 'rope_freqs.weight' must have shape [{}] (rope.dimension_count / 2)", n));
  check(t->type == DType::kF32, file,
        fmt::format("tensor 'rope_freqs.weight' has type {}, expected f32", dtype_name(t->type)));
  std::vector<float> out(n);
  std::memcpy(out.data(), t->data, n * sizeof(float));
  for (const float v : out) {
    check(std::isfinite(v) && v > 0, file,
          fmt::format("tensor 'rope_freqs.weight' holds {}, not a positive divisor", v));
  }
  return out;
}

// Mixture of experts: `{arch}.expert_count` > 0. The expert FFN size is
// `expert_feed_forward_length` (Qwen2-MoE) or else `feed_forward_length` (Mixtral).
void read_experts(const GgufFile& file, const Architecture& arch, ModelConfig& c) {
  const std::string& a = c.architecture;
  if (file.get_uint(a + ".expert_count").value_or(0) == 0) return;
  c.n_expert = read_count(file, a, "expert_count");
  c.n_expert_used = read_count(file, a, "expert_used_count");
  c.n_ff_expert = read_count(file, a, "expert_feed_forward_length", c.n_ff);
  if (arch.moe_shared_expert) {
    c.n_ff_shared = read_count(file, a, "expert_shared_feed_forward_length", c.n_ff);
  }
  c.expert_weights_norm =
      file.get_bool(a + ".expert_weights_norm").value_or(arch.moe_weights_norm);
  check(c.n_expert_used <= c.n_expert, file,
        fmt::format("expert_used_count {} exceeds expert_count {}", c.n_expert_used, c.n_expert));
}

// LongRoPE (Phi-3, as convert_hf_to_gguf.py writes it): the per-frequency divisors as tensors
// rope_factors_short/long.weight [n_rot/2], the context they switch at and the cos/sin factor
// as metadata. Read here, not by the weight loader: they are RoPE parameters, not weights.
void read_longrope(const GgufFile& file, ModelConfig& c) {
  const auto factors = [&](const char* name) {
    std::vector<float> out;
    const GgufTensor* t = file.find_tensor(name);
    if (!t) return out;
    if (t->type != DType::kF32 || t->dims != std::vector<uint64_t>{uint64_t(c.n_rot / 2)}) {
      throw FormatError(
          fmt::format("{}: tensor '{}' must be f32 of shape [{}]", file.path(), name, c.n_rot / 2));
    }
    const auto* data = reinterpret_cast<const float*>(t->data);
    out.assign(data, data + c.n_rot / 2);
    return out;
  };
  c.rope_freq_factors = factors("rope_factors_short.weight");
  c.rope_freq_factors_long = factors("rope_factors_long.weight");
  if (c.rope_freq_factors_long.empty()) return;
  if (c.rope_freq_factors.empty()) {
    throw FormatError(fmt::format(
        "{}: tensor 'rope_factors_long.weight' needs 'rope_factors_short.weight'", file.path()));
  }
  const std::string& a = c.architecture;
  c.rope_long_from = read_count(file, a, "rope.scaling.original_context_length", c.n_ctx_train);
  c.rope_attn_factor = read_float(file, a + ".rope.scaling.attn_factor", 1.0f);
  check(c.rope_attn_factor > 0, file, "rope.scaling.attn_factor must be positive");
}

// Per-layer sliding windows and RoPE bases, softcaps and Granite's multipliers, from the keys
// llama.cpp writes for them.
void read_scalings(const GgufFile& file, const Architecture& arch, ModelConfig& c) {
  const std::string& a = c.architecture;
  c.attn_softcap = read_float(file, a + ".attn_logit_softcapping", 0.0f);
  c.final_softcap = read_float(file, a + ".final_logit_softcapping", 0.0f);
  check(c.attn_softcap >= 0 && c.final_softcap >= 0, file, "soft-caps must not be negative");
  if (arch.gguf_multipliers) {
    c.embedding_scale = read_float(file, a + ".embedding_scale", c.embedding_scale);
    c.residual_scale = read_float(file, a + ".residual_scale", 1.0f);
    c.attention_scale = read_float(file, a + ".attention.scale", 0.0f);
    const float logit_divisor = read_float(file, a + ".logit_scale", 1.0f);
    check(logit_divisor > 0 && c.attention_scale >= 0, file,
          "logit_scale must be positive, attention.scale not negative");
    c.logit_scale = 1.0f / logit_divisor;
  }
  if (arch.gguf_swa_period > 0) {
    if (const auto window = file.get_uint(a + ".attention.sliding_window"); window && *window > 0) {
      check(*window <= uint64_t(std::numeric_limits<int32_t>::max()), file,
            "attention.sliding_window is out of range");
      const float swa_base =
          read_float(file, a + ".rope.freq_base_swa",
                     arch.gguf_rope_base_swa > 0 ? arch.gguf_rope_base_swa : c.rope_freq_base);
      check(swa_base > 0, file, "rope.freq_base_swa must be positive");
      for (int32_t l = 0; l < c.n_layer; ++l) {
        const bool slides = (l + 1) % arch.gguf_swa_period != 0;
        c.sliding_window.push_back(slides ? int32_t(*window) : 0);
        c.layer_rope_base.push_back(slides ? swa_base : c.rope_freq_base);
      }
    }
  }
  // Linear RoPE scaling: every layer, except sliding layers of architectures whose sliding layers
  // have their own base (llama.cpp's gemma3 leaves those unscaled).
  if (file.get_string(a + ".rope.scaling.type").value_or("") == "linear") {
    const float factor = read_float(file, a + ".rope.scaling.factor", 1.0f);
    check(factor > 0, file, "rope.scaling.factor must be positive");
    if (factor != 1.0f) {
      for (int32_t l = 0; l < c.n_layer; ++l) {
        const bool own_base = arch.gguf_rope_base_swa > 0 && c.window(l) > 0;
        c.layer_rope_linear.push_back(own_base ? 1.0f : factor);
      }
    }
  }
  if (arch.gguf_no_rope_period > 0) {
    c.layer_rope_base.resize(size_t(c.n_layer), c.rope_freq_base);
    for (int32_t l = arch.gguf_no_rope_period - 1; l < c.n_layer; l += arch.gguf_no_rope_period) {
      c.layer_rope_base[size_t(l)] = 0.0f;
    }
  }
}

}  // namespace

bool is_supported_architecture(std::string_view architecture) {
  return find_architecture(architecture) != nullptr;
}

ModelConfig read_config(const GgufFile& file) {
  ModelConfig c;
  c.architecture = std::string(file.require_string("general.architecture"));
  const Architecture* arch = find_architecture(c.architecture);
  if (!arch) {
    throw UnsupportedError(fmt::format("{}: architecture '{}' is not supported (supported: {})",
                                       file.path(), c.architecture, supported_architectures()));
  }
  const std::string& a = c.architecture;
  c.name = std::string(file.get_string("general.name").value_or(""));
  c.n_embd = read_count(file, a, "embedding_length");
  c.n_layer = read_count(file, a, "block_count");
  c.n_head = read_count(file, a, "attention.head_count");
  c.n_head_kv = read_count(file, a, "attention.head_count_kv", c.n_head);
  c.head_dim = read_count(file, a, "attention.key_length", c.n_embd / c.n_head);
  c.n_ff = read_count(file, a, "feed_forward_length");
  c.n_ctx_train = read_count(file, a, "context_length");
  c.n_rot = read_count(file, a, "rope.dimension_count", c.head_dim);
  c.rope_freq_base = read_float(file, a + ".rope.freq_base", 10000.0f);
  apply_architecture(*arch, c);
  c.norm_eps =
      read_float(file,
                 a + (c.norm_kind == NormKind::kLayer ? ".attention.layer_norm_epsilon"
                                                      : ".attention.layer_norm_rms_epsilon"),
                 1e-5f);
  if (arch->gguf_window_every_layer) {
    if (const auto window = file.get_uint(a + ".attention.sliding_window")) {
      check(*window > 0 && *window <= uint64_t(std::numeric_limits<int32_t>::max()), file,
            "attention.sliding_window must be positive");
      c.sliding_window.assign(size_t(c.n_layer), static_cast<int32_t>(*window));
    }
  }
  read_longrope(file, c);
  read_experts(file, *arch, c);
  read_scalings(file, *arch, c);

  // The vocabulary size: from metadata when present, else from the token list.
  if (auto v = file.get_uint(a + ".vocab_size")) {
    c.n_vocab = static_cast<int32_t>(std::min<uint64_t>(*v, std::numeric_limits<int32_t>::max()));
  } else if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) {
    c.n_vocab = static_cast<int32_t>(tokens->items.size());
  } else if (const GgufTensor* embd = file.find_tensor("token_embd.weight");
             embd && embd->dims.size() == 2) {
    c.n_vocab = static_cast<int32_t>(embd->dims[1]);
  }
  check(c.n_vocab > 0, file, "the vocabulary size is unknown");
  check(c.n_head % c.n_head_kv == 0, file,
        fmt::format("head_count {} is not a multiple of head_count_kv {}", c.n_head, c.n_head_kv));
  check(c.n_rot <= c.head_dim && c.n_rot % 2 == 0, file,
        fmt::format("rope.dimension_count {} must be even and at most the head size {}", c.n_rot,
                    c.head_dim));
  check(c.rope_freq_base > 0, file, "rope.freq_base must be positive");
  check(c.norm_eps > 0, file, "layer_norm_rms_epsilon must be positive");
  if (c.rope_freq_factors.empty()) c.rope_freq_factors = read_rope_freq_factors(file, c);
  return c;
}

void write_core_hparams(GgufWriter& w, const ModelConfig& c) {
  const std::string a = c.architecture + ".";
  w.set_u32(a + "vocab_size", uint32_t(c.n_vocab));
  w.set_u32(a + "context_length", uint32_t(c.n_ctx_train));
  w.set_u32(a + "embedding_length", uint32_t(c.n_embd));
  w.set_u32(a + "block_count", uint32_t(c.n_layer));
  w.set_u32(a + "feed_forward_length", uint32_t(c.n_ff));
  w.set_u32(a + "rope.dimension_count", uint32_t(c.n_rot));
  w.set_u32(a + "attention.head_count", uint32_t(c.n_head));
  w.set_u32(a + "attention.head_count_kv", uint32_t(c.n_head_kv));
  if (c.head_dim != c.n_embd / c.n_head) {
    w.set_u32(a + "attention.key_length", uint32_t(c.head_dim));
    w.set_u32(a + "attention.value_length", uint32_t(c.head_dim));
  }
  w.set_f32(a + "rope.freq_base", c.rope_freq_base);
  w.set_f32(a + (c.norm_kind == NormKind::kLayer ? "attention.layer_norm_epsilon"
                                                 : "attention.layer_norm_rms_epsilon"),
            c.norm_eps);
}

}  // namespace slm
