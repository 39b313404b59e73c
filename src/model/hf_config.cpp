#include "src/model/hf_config.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include "slm/error.h"
#include "src/model/architecture.h"

namespace slm {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Hugging Face class → slm architecture (whose table says what its layers hold). Mistral is
// Llama plus an optional sliding window on every layer.
struct HfClass {
  std::string_view hf_class;
  std::string_view architecture;
  bool sliding_window_every_layer;  // whether `sliding_window` applies to all layers
  // Without `layer_types`: `sliding_window` applies to layer l when (l + 1) % period ≠ 0
  // (Gemma 2: 2, Gemma 3: `sliding_window_pattern`, default 6); 0: not per layer.
  int32_t sliding_window_period = 0;
  float local_rope_base = 0;  // sliding layers' RoPE base when the config names none (Gemma 3)
  // PhiMoE: transformers computes what llama.cpp's graph does not: LayerNorm (llama.cpp: RMSNorm
  // plus bias), sparsemixer routing, and q/k/v/o and lm_head biases only when attention_bias /
  // lm_head_bias say so.
  bool phimoe = false;
};
constexpr HfClass kHfClasses[] = {
    {"LlamaForCausalLM", "llama", false},
    {"MistralForCausalLM", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false},
    {"Qwen3ForCausalLM", "qwen3", false},
    {"PhiForCausalLM", "phi2", false},
    {"Phi3ForCausalLM", "phi3", true},
    {"Starcoder2ForCausalLM", "starcoder2", true},
    {"MixtralForCausalLM", "llama", true},
    {"Qwen2MoeForCausalLM", "qwen2moe", false},
    {"Qwen3MoeForCausalLM", "qwen3moe", false},
    {.hf_class = "PhimoeForCausalLM",
     .architecture = "phimoe",
     .sliding_window_every_layer = true,
     .phimoe = true},
    {"GemmaForCausalLM", "gemma", false},
    {"Gemma2ForCausalLM", "gemma2", false, 2},
    {"Gemma3ForCausalLM", "gemma3", false, 6, 10000.0f},
    {"GraniteForCausalLM", "granite", false},
    {"Olmo2ForCausalLM", "olmo2", false},
    {"SmolLM3ForCausalLM", "smollm3", false},
};

std::string supported_hf_classes() {
  std::string out;
  for (const HfClass& e : kHfClasses) out += (out.empty() ? "" : ", ") + std::string(e.hf_class);
  return out;
}

class ConfigReader {
 public:
  ConfigReader(std::string path, object root) : path_(std::move(path)), root_(root) {}

  [[noreturn]] void malformed(std::string_view key, std::string_view what) const {
    throw FormatError(fmt::format("{}: '{}' {}", path_, key, what));
  }
  [[noreturn]] void unsupported(std::string_view what) const {
    throw UnsupportedError(fmt::format("{}: {}", path_, what));
  }

  // The value of `key` in `o` (default: the root); nullopt when absent or null.
  std::optional<element> field(std::string_view key, std::optional<object> o = {}) const {
    element e;
    if (o.value_or(root_).at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
      return std::nullopt;
    }
    return e;
  }

  // A positive int32; `fallback` when absent (0: the key is required).
  int32_t count(std::string_view key, int64_t fallback = 0) const {
    const std::optional<element> e = field(key);
    if (!e) {
      if (fallback > 0) return static_cast<int32_t>(fallback);
      malformed(key, "is missing");
    }
    int64_t v = 0;
    if (e->get_int64().get(v) != simdjson::SUCCESS) malformed(key, "is not an integer");
    if (v <= 0 || v > std::numeric_limits<int32_t>::max()) {
      malformed(key, fmt::format("= {} is out of range", v));
    }
    return static_cast<int32_t>(v);
  }

  // A positive finite number (integers allowed); `fallback` when absent.
  double positive(std::string_view key, double fallback, std::optional<object> o = {}) const {
    const std::optional<element> e = field(key, o);
    if (!e) return fallback;
    double v = 0;
    if (e->get_double().get(v) != simdjson::SUCCESS) malformed(key, "is not a number");
    if (!(v > 0) || !std::isfinite(v)) malformed(key, fmt::format("= {} must be positive", v));
    return v;
  }

  bool flag(std::string_view key, bool fallback) const {
    const std::optional<element> e = field(key);
    if (!e) return fallback;
    bool b = false;
    if (e->get_bool().get(b) != simdjson::SUCCESS) malformed(key, "is not true or false");
    return b;
  }

  std::optional<std::string_view> string(std::string_view key, std::optional<object> o = {}) const {
    const std::optional<element> e = field(key, o);
    if (!e) return std::nullopt;
    std::string_view s;
    if (e->get_string().get(s) != simdjson::SUCCESS) malformed(key, "is not a string");
    return s;
  }

  // A list of positive numbers; empty when absent.
  std::vector<float> numbers(std::string_view key, object o) const {
    std::vector<float> out;
    const std::optional<element> e = field(key, o);
    if (!e) return out;
    array list;
    if (e->get_array().get(list) != simdjson::SUCCESS) malformed(key, "is not a list of numbers");
    for (element v : list) {
      double x = 0;
      if (v.get_double().get(x) != simdjson::SUCCESS || !(x > 0) || !std::isfinite(x)) {
        malformed(key, "is not a list of positive numbers");
      }
      out.push_back(float(x));
    }
    return out;
  }

  std::optional<object> object_field(std::string_view key, std::optional<object> o = {}) const {
    const std::optional<element> e = field(key, o);
    if (!e) return std::nullopt;
    object value;
    if (e->get_object().get(value) != simdjson::SUCCESS) malformed(key, "is not an object");
    return value;
  }

  // A token id or a list of them.
  std::vector<int32_t> ids(std::string_view key) const {
    std::vector<int32_t> out;
    const std::optional<element> e = field(key);
    if (!e) return out;
    const auto one = [&](element v) {
      int64_t id = 0;
      if (v.get_int64().get(id) != simdjson::SUCCESS || id < 0 ||
          id > std::numeric_limits<int32_t>::max()) {
        malformed(key, "is not a token id or a list of them");
      }
      out.push_back(static_cast<int32_t>(id));
    };
    if (array list; e->get_array().get(list) == simdjson::SUCCESS) {
      for (element v : list) one(v);
    } else {
      one(*e);
    }
    return out;
  }

  // The Hugging Face class name: architectures[0].
  std::string_view hf_class() const {
    const std::optional<element> e = field("architectures");
    if (!e) malformed("architectures", fmt::format("is missing (supported: {})", supported_hf_classes()));
    array list;
    std::string_view name;
    if (e->get_array().get(list) != simdjson::SUCCESS || list.size() == 0 ||
        list.at(0).get_string().get(name) != simdjson::SUCCESS) {
      malformed("architectures", "is not a list of class names");
    }
    return name;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  object root_;
};

// Llama 3 scaling (transformers' _compute_llama3_parameters), as a divisor per frequency:
// wavelengths λ_i = 2π / ω_i longer than L/low (L = original_max_position_embeddings) are
// slowed by `factor`, shorter than L/high kept, and in between blended with
// s = (L/λ_i − low) / (high − low): ω_i' = ω_i · ((1 − s)/factor + s).
std::vector<float> llama3_freq_factors(const ConfigReader& r, object params, const ModelConfig& c) {
  const auto need = [&](std::string_view key) {
    const double v = r.positive(key, -1.0, params);
    if (v < 0) r.malformed(key, "is missing (rope_type llama3 needs it)");
    return v;
  };
  const double factor = need("factor"), low = need("low_freq_factor"),
               high = need("high_freq_factor"), old_ctx = need("original_max_position_embeddings");
  if (high <= low) {
    r.malformed("high_freq_factor",
                fmt::format("= {} must exceed low_freq_factor = {}", high, low));
  }
  constexpr double kPi = 3.14159265358979323846;
  std::vector<float> out;
  for (int32_t i = 0; i < c.n_rot / 2; ++i) {
    const double omega = std::pow(double(c.rope_freq_base), -2.0 * i / c.n_rot);
    const double wavelen = 2 * kPi / omega;
    double divisor = 1.0;
    if (wavelen > old_ctx / low) {
      divisor = factor;
    } else if (wavelen >= old_ctx / high) {
      const double s = (old_ctx / wavelen - low) / (high - low);
      divisor = 1.0 / ((1 - s) / factor + s);
    }
    out.push_back(float(divisor));
  }
  return out;
}

// LongRoPE (Phi-3; transformers' _compute_longrope_parameters): per-frequency divisors
// short_factor / long_factor, long ones once a pass reaches original_max_position_embeddings
// (L), and cos/sin scaled by attention_factor, by default sqrt(1 + ln(s) / ln(L)) for
// s = max_position_embeddings / L > 1.
void read_longrope(const ConfigReader& r, object params, ModelConfig& c) {
  const auto factors = [&](std::string_view key) {
    std::vector<float> f = r.numbers(key, params);
    if (f.size() != size_t(c.n_rot / 2)) {
      r.malformed(key, fmt::format("has {} values, expected {} (half the rotated dimensions)",
                                   f.size(), c.n_rot / 2));
    }
    return f;
  };
  c.rope_freq_factors = factors("short_factor");
  c.rope_freq_factors_long = factors("long_factor");
  double original = r.positive("original_max_position_embeddings", -1.0, params);
  if (original < 0) original = r.positive("original_max_position_embeddings", -1.0);
  double factor = r.positive("factor", 1.0, params);
  if (original > 0) {
    factor = double(c.n_ctx_train) / original;
  } else {
    original = c.n_ctx_train;
  }
  c.rope_long_from = int32_t(std::min<double>(original, std::numeric_limits<int32_t>::max()));
  const double attention_factor =
      factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(original));
  c.rope_attn_factor = float(r.positive("attention_factor", attention_factor, params));
}

// Mixture of experts: num_local_experts (Mixtral) or num_experts (Qwen) > 0. Mixtral's experts
// are intermediate_size wide and always renormalised; Qwen's are moe_intermediate_size wide,
// renormalised when norm_topk_prob, and Qwen2-MoE adds a shared expert.
void read_experts(const ConfigReader& r, const Architecture& arch, const HfClass& entry,
                  ModelConfig& c) {
  const char* count_key = r.field("num_experts") ? "num_experts" : "num_local_experts";
  if (!r.field(count_key)) return;
  c.n_expert = r.count(count_key);
  c.n_expert_used = r.count("num_experts_per_tok");
  if (c.n_expert_used > c.n_expert) {
    r.malformed("num_experts_per_tok",
                fmt::format("= {} exceeds {} = {}", c.n_expert_used, count_key, c.n_expert));
  }
  c.n_ff_expert = r.count("moe_intermediate_size", c.n_ff);
  // Mixtral's config has no norm_topk_prob (it always renormalises); Qwen's defaults to false.
  c.expert_weights_norm = r.flag("norm_topk_prob", arch.name == "llama");
  if (entry.phimoe) {
    c.expert_routing = ExpertRouting::kSparseMixer;
    c.expert_weights_norm = false;
    const std::optional<element> jitter = r.field("router_jitter_noise");
    double eps = 0.01;  // transformers' PhimoeConfig default
    if (jitter && (jitter->get_double().get(eps) != simdjson::SUCCESS || !(eps >= 0))) {
      r.malformed("router_jitter_noise", "is not a number ≥ 0");
    }
    c.router_jitter = float(eps);
    // transformers' sparsemixer picks exactly two experts.
    if (c.n_expert_used != 2) {
      r.unsupported(fmt::format(
          "num_experts_per_tok = {} with sparsemixer routing (PhiMoE picks 2)", c.n_expert_used));
    }
  }
  if (arch.moe_shared_expert) c.n_ff_shared = r.count("shared_expert_intermediate_size");
  // Dense layers between sparse ones (Qwen's decoder_sparse_step / mlp_only_layers).
  if (r.count("decoder_sparse_step", 1) != 1) {
    r.unsupported(
        "decoder_sparse_step other than 1 (dense layers among MoE ones) is not supported yet");
  }
  if (const auto dense = r.field("mlp_only_layers")) {
    array list;
    if (dense->get_array().get(list) != simdjson::SUCCESS) {
      r.malformed("mlp_only_layers", "is not a list");
    }
    if (list.size() > 0) {
      r.unsupported("mlp_only_layers (dense layers among MoE ones) is not supported yet");
    }
  }
}

// rope_type "default" (or absent), "linear", "llama3" and "longrope" are what the decoder
// implements.
// Returns the linear scaling factor (1: none).
float read_rope_type(const ConfigReader& r, object params, std::string_view where, ModelConfig& c) {
  std::optional<std::string_view> type = r.string("rope_type", params);
  if (!type) type = r.string("type", params);
  if (type && *type == "llama3") {
    c.rope_freq_factors = llama3_freq_factors(r, params, c);
  } else if (type && *type == "linear") {
    const double factor = r.positive("factor", -1.0, params);
    if (factor < 0) r.malformed("factor", "is missing (rope_type linear needs it)");
    return float(factor);
  } else if (type && (*type == "longrope" || *type == "su")) {  // "su": its first name
    read_longrope(r, params, c);
  } else if (type && *type != "default") {
    r.unsupported(fmt::format(
        "{} type '{}' is not supported yet (supported: default, linear, llama3, longrope)", where,
        *type));
  }
  return 1.0f;
}

// The RoPE of the layers: the global base and linear factor, and those of sliding-window layers
// where they have their own (Gemma 3; local_base 0 when not).
struct RopeKinds {
  float local_base = 0, local_linear = 1, global_linear = 1;
};

RopeKinds read_rope(const ConfigReader& r, const HfClass& entry, ModelConfig& c) {
  // transformers 5.x: rope_parameters {rope_theta, rope_type, ...}, or one such object per layer
  // type (Gemma 3: full_attention, sliding_attention); 4.x: rope_theta at the top level,
  // rope_local_base_freq (Gemma 3) and rope_scaling {rope_type or type, ...} (null when unscaled;
  // Gemma 3 scales its global layers only).
  std::optional<object> params = r.object_field("rope_parameters");
  std::string_view where = "rope_parameters";
  RopeKinds out;
  out.local_base = entry.local_rope_base;
  if (params) {
    if (const auto sliding = r.object_field("sliding_attention", params)) {
      out.local_base = float(r.positive("rope_theta", 10000.0, sliding));
      out.local_linear = read_rope_type(r, *sliding, "rope_parameters.sliding_attention", c);
      params = r.object_field("full_attention", params);
      if (!params) r.malformed("rope_parameters", "has sliding_attention but no full_attention");
      where = "rope_parameters.full_attention";
    }
    c.rope_freq_base = float(r.positive("rope_theta", 10000.0, params));
  } else {
    c.rope_freq_base = float(r.positive("rope_theta", 10000.0));
    out.local_base = float(r.positive("rope_local_base_freq", out.local_base));
    params = r.object_field("rope_scaling");
    where = "rope_scaling";
  }
  // Partial rotary (Phi-2): only the first partial_rotary_factor · head_dim dims of a head rotate.
  double partial = r.positive("partial_rotary_factor", 1.0);
  if (params) partial = r.positive("partial_rotary_factor", partial, params);
  if (partial > 1.0) r.malformed("partial_rotary_factor", fmt::format("= {} exceeds 1", partial));
  c.n_rot = int32_t(double(c.head_dim) * partial);  // transformers truncates likewise
  if (partial < 1.0 && (c.n_rot % 2 != 0 || c.n_rot == 0)) {
    r.malformed(
        "partial_rotary_factor",
        fmt::format("gives {} rotated dimensions, which must be even and positive", c.n_rot));
  }
  if (params) out.global_linear = read_rope_type(r, *params, where, c);
  if (out.local_base > 0 && !c.rope_freq_factors.empty()) {
    r.unsupported(
        "RoPE frequency scaling with a separate base for sliding layers is not supported");
  }
  return out;
}

// Which layers use the sliding window: `layer_types` when given, else the class's pattern, else
// every layer (Mistral) or none. `known`: whether the config or class says which.
std::vector<bool> sliding_layers(const ConfigReader& r, const HfClass& entry, int32_t n_layer,
                                 bool& known) {
  std::vector<bool> out(size_t(n_layer), entry.sliding_window_every_layer);
  known = entry.sliding_window_every_layer;
  if (const auto types = r.field("layer_types")) {
    array list;
    if (types->get_array().get(list) != simdjson::SUCCESS || list.size() != size_t(n_layer)) {
      r.malformed("layer_types", fmt::format("is not a list of {} layer types", n_layer));
    }
    size_t l = 0;
    for (element e : list) {
      std::string_view type;
      if (e.get_string().get(type) != simdjson::SUCCESS ||
          (type != "sliding_attention" && type != "full_attention")) {
        r.malformed("layer_types", "holds a type other than sliding_attention and full_attention");
      }
      out[l++] = type == "sliding_attention";
    }
    known = true;
  } else if (entry.sliding_window_period > 0) {
    const int32_t period = r.count("sliding_window_pattern",
                                   r.count("_sliding_window_pattern", entry.sliding_window_period));
    for (int32_t l = 0; l < n_layer; ++l) out[size_t(l)] = (l + 1) % period != 0;
    known = true;
  }
  return out;
}

// Whether each layer rotates q/k: SmolLM3's no_rope_layers (1: RoPE, 0: none), or every
// no_rope_layer_interval-th layer without.
std::vector<bool> rope_layers(const ConfigReader& r, int32_t n_layer) {
  std::vector<bool> out(size_t(n_layer), true);
  if (const auto list_field = r.field("no_rope_layers")) {
    array list;
    if (list_field->get_array().get(list) != simdjson::SUCCESS || list.size() != size_t(n_layer)) {
      r.malformed("no_rope_layers", fmt::format("is not a list of {} flags", n_layer));
    }
    size_t l = 0;
    for (element e : list) {
      int64_t v = 0;
      if (e.get_int64().get(v) != simdjson::SUCCESS || (v != 0 && v != 1)) {
        r.malformed("no_rope_layers", "holds a value other than 0 and 1");
      }
      out[l++] = v == 1;
    }
  } else if (r.field("no_rope_layer_interval")) {
    const int32_t interval = r.count("no_rope_layer_interval");
    for (int32_t l = 0; l < n_layer; ++l) out[size_t(l)] = (l + 1) % interval != 0;
  }
  return out;
}

// Gemma's and Granite's scalings of embeddings, scores, residuals and logits.
void read_scalings(const ConfigReader& r, ModelConfig& c) {
  if (r.field("query_pre_attn_scalar")) {
    c.attention_scale = float(1.0 / std::sqrt(r.positive("query_pre_attn_scalar", 1.0)));
  }
  c.attention_scale = float(r.positive("attention_multiplier", c.attention_scale));
  c.attn_softcap = float(r.positive("attn_logit_softcapping", 0.0));
  c.final_softcap = float(r.positive("final_logit_softcapping", 0.0));
  c.embedding_scale = float(r.positive("embedding_multiplier", c.embedding_scale));
  c.residual_scale = float(r.positive("residual_multiplier", 1.0));
  c.logit_scale = float(1.0 / r.positive("logits_scaling", 1.0));
}

}  // namespace

HfConfig read_hf_config(const std::string& path) {
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read", path));
  }
  simdjson::dom::parser parser;
  element root;
  if (const auto err = parser.parse(text).get(root); err != simdjson::SUCCESS) {
    throw FormatError(fmt::format("{}: invalid JSON: {}", path, simdjson::error_message(err)));
  }
  object root_object;
  if (root.get_object().get(root_object) != simdjson::SUCCESS) {
    throw FormatError(fmt::format("{}: not a JSON object", path));
  }
  const ConfigReader r(path, root_object);

  const std::string_view hf_class = r.hf_class();
  const auto* entry = std::find_if(std::begin(kHfClasses), std::end(kHfClasses),
                                   [&](const HfClass& e) { return e.hf_class == hf_class; });
  if (entry == std::end(kHfClasses)) {
    r.unsupported(fmt::format("architecture '{}' is not supported (supported: {})", hf_class,
                              supported_hf_classes()));
  }
  const Architecture& arch = *find_architecture(entry->architecture);

  HfConfig out;
  ModelConfig& c = out.model;
  c.architecture = std::string(arch.name);
  c.name = std::filesystem::path(path).parent_path().filename().string();
  c.n_embd = r.count("hidden_size");
  c.n_layer = r.count("num_hidden_layers");
  c.n_head = r.count("num_attention_heads");
  c.n_head_kv = r.count("num_key_value_heads", c.n_head);
  c.head_dim = r.count("head_dim", c.n_embd / c.n_head);
  c.n_ff = r.count("intermediate_size");
  c.n_vocab = r.count("vocab_size");
  c.n_ctx_train = r.count("max_position_embeddings", 2048);  // transformers' LlamaConfig default
  apply_architecture(arch, c);
  c.rope_layout = RopeLayout::kHalfSplit;  // HF q/k rows rotate (i, i + d/2)
  // The norms' epsilon under each family's key (Llama: rms_norm_eps, Phi-2: layer_norm_eps,
  // StarCoder2: norm_epsilon).
  c.norm_eps = float(r.positive("rms_norm_eps", 1e-6));
  c.norm_eps = float(r.positive("layer_norm_eps", c.norm_eps));
  c.norm_eps = float(r.positive("norm_epsilon", c.norm_eps));
  c.norm_weight_offset = arch.hf_norm_offset;
  const RopeKinds rope = read_rope(r, *entry, c);
  read_scalings(r, c);
  read_experts(r, arch, *entry, c);
  if (entry->phimoe) {
    c.norm_kind = NormKind::kLayer;
    c.qkv_bias = c.attn_output_bias = r.flag("attention_bias", false);
    c.output_bias = r.flag("lm_head_bias", false);
  }
  out.tie_word_embeddings = r.flag("tie_word_embeddings", false);
  out.eos_ids = r.ids("eos_token_id");

  // What the llama decoder does not compute: say so rather than run a different model.
  // GeGLU architectures (Gemma) name their activation hidden_activation and ignore hidden_act;
  // the GELU MLPs compute the tanh form, which is what gelu_new and gelu_pytorch_tanh are.
  const bool gelu = c.ffn_kind == FfnKind::kGelu;
  if (arch.ffn_activation == FfnActivation::kGeluTanh) {
    if (const auto act = r.string("hidden_activation"); act && *act != "gelu_pytorch_tanh") {
      r.unsupported(fmt::format(
          "hidden_activation '{}' is not supported (supported: gelu_pytorch_tanh)", *act));
    }
  } else if (const auto act = r.string("hidden_act");
             act && (gelu ? *act != "gelu_new" && *act != "gelu_pytorch_tanh" : *act != "silu")) {
    r.unsupported(fmt::format("hidden_act '{}' is not supported for {} (supported: {})", *act,
                              hf_class, gelu ? "gelu_new, gelu_pytorch_tanh" : "silu"));
  }
  if (arch.ffn_bias && !r.flag("use_bias", true)) {
    r.unsupported("'use_bias' = false is not supported yet");
  }
  if (r.flag("qk_layernorm", false)) r.unsupported("'qk_layernorm' = true is not supported yet");
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (entry->phimoe && std::string_view(key) == "attention_bias") continue;  // read above
    if (r.flag(key, false)) r.unsupported(fmt::format("'{}' = true is not supported yet", key));
  }
  // A sliding window at least as long as the trained context never slides; Qwen configs carry
  // one that only applies when use_sliding_window is true.
  bool known = false;
  const std::vector<bool> sliding = sliding_layers(r, *entry, c.n_layer, known);
  if (const auto window = r.field("sliding_window"); window && r.flag("use_sliding_window", true)) {
    int64_t w = 0;
    if (window->get_int64().get(w) != simdjson::SUCCESS || w <= 0) {
      r.malformed("sliding_window", "is not a positive integer");
    }
    if (w < c.n_ctx_train) {
      if (!known) {
        r.unsupported(fmt::format(
            "sliding-window attention (sliding_window = {}) is not supported for {} yet", w,
            hf_class));
      }
      for (const bool slides : sliding) c.sliding_window.push_back(slides ? int32_t(w) : 0);
    }
  }
  // Per-layer RoPE: sliding layers' own base and scaling (Gemma 3), layers without RoPE
  // (SmolLM3).
  const std::vector<bool> rotates = rope_layers(r, c.n_layer);
  if (rope.local_base > 0 || std::find(rotates.begin(), rotates.end(), false) != rotates.end()) {
    for (size_t l = 0; l < size_t(c.n_layer); ++l) {
      const float base = sliding[l] && rope.local_base > 0 ? rope.local_base : c.rope_freq_base;
      c.layer_rope_base.push_back(rotates[l] ? base : 0.0f);
    }
  }
  if (rope.local_linear != 1.0f || rope.global_linear != 1.0f) {
    for (size_t l = 0; l < size_t(c.n_layer); ++l) {
      const bool local = sliding[l] && rope.local_base > 0;
      c.layer_rope_linear.push_back(local ? rope.local_linear : rope.global_linear);
    }
  }
  if (c.n_head % c.n_head_kv != 0) {
    r.malformed("num_key_value_heads", fmt::format("= {} does not divide num_attention_heads = {}",
                                                   c.n_head_kv, c.n_head));
  }
  if (c.head_dim % 2 != 0) r.malformed("head_dim", fmt::format("= {} must be even", c.head_dim));
  return out;
}

}  // namespace slm
