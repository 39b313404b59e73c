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
};
constexpr HfClass kHfClasses[] = {
    {"LlamaForCausalLM", "llama", false},
    {"MistralForCausalLM", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false},
    {"Qwen3ForCausalLM", "qwen3", false},
    {"PhiForCausalLM", "phi2", false},
    {"Phi3ForCausalLM", "phi3", true},
    {"Starcoder2ForCausalLM", "starcoder2", true},
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

  std::optional<object> object_field(std::string_view key) const {
    const std::optional<element> e = field(key);
    if (!e) return std::nullopt;
    object o;
    if (e->get_object().get(o) != simdjson::SUCCESS) malformed(key, "is not an object");
    return o;
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

// rope_type "default" (or absent), "llama3" and "longrope" are what the decoder implements.
void read_rope(const ConfigReader& r, ModelConfig& c) {
  // transformers 5.x: rope_parameters {rope_theta, rope_type, ...}; 4.x: rope_theta at the top
  // level and rope_scaling {rope_type or type, ...} (null when unscaled).
  std::optional<object> params = r.object_field("rope_parameters");
  std::string_view where = "rope_parameters";
  if (params) {
    c.rope_freq_base = float(r.positive("rope_theta", 10000.0, params));
  } else {
    c.rope_freq_base = float(r.positive("rope_theta", 10000.0));
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
  if (!params) return;
  std::optional<std::string_view> type = r.string("rope_type", params);
  if (!type) type = r.string("type", params);
  if (type && *type == "llama3") {
    c.rope_freq_factors = llama3_freq_factors(r, *params, c);
  } else if (type && (*type == "longrope" || *type == "su")) {  // "su": its first name
    read_longrope(r, *params, c);
  } else if (type && *type != "default") {
    r.unsupported(fmt::format(
        "{} type '{}' is not supported yet (supported: default, llama3, longrope)", where, *type));
  }
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
  read_rope(r, c);
  out.tie_word_embeddings = r.flag("tie_word_embeddings", false);
  out.eos_ids = r.ids("eos_token_id");

  // What the llama decoder does not compute: say so rather than run a different model.
  // The GELU MLPs compute the tanh form, which is what gelu_new and gelu_pytorch_tanh are.
  const bool gelu = c.ffn_kind == FfnKind::kGelu;
  if (const auto act = r.string("hidden_act");
      act && (gelu ? *act != "gelu_new" && *act != "gelu_pytorch_tanh" : *act != "silu")) {
    r.unsupported(fmt::format("hidden_act '{}' is not supported for {} (supported: {})", *act,
                              hf_class, gelu ? "gelu_new, gelu_pytorch_tanh" : "silu"));
  }
  if (arch.ffn_bias && !r.flag("use_bias", true)) {
    r.unsupported("'use_bias' = false is not supported yet");
  }
  if (r.flag("qk_layernorm", false)) r.unsupported("'qk_layernorm' = true is not supported yet");
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (r.flag(key, false)) r.unsupported(fmt::format("'{}' = true is not supported yet", key));
  }
  // A sliding window at least as long as the trained context never slides; Qwen configs carry
  // one that only applies when use_sliding_window is true.
  if (const auto window = r.field("sliding_window"); window && r.flag("use_sliding_window", true)) {
    int64_t w = 0;
    if (window->get_int64().get(w) != simdjson::SUCCESS || w <= 0) {
      r.malformed("sliding_window", "is not a positive integer");
    }
    if (w < c.n_ctx_train) {
      if (!entry->sliding_window_every_layer) {
        r.unsupported(fmt::format(
            "sliding-window attention (sliding_window = {}) is not supported for {} yet", w,
            hf_class));
      }
      c.sliding_window.assign(size_t(c.n_layer), static_cast<int32_t>(w));
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
