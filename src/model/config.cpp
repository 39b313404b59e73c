#include "src/model/config.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "slm/error.h"
#include "src/format/gguf.h"
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
  if (file.get_uint(a + ".expert_count").value_or(0) > 0) {
    throw UnsupportedError(fmt::format("{}: mixture-of-experts '{}' models are not supported yet",
                                       file.path(), a));
  }
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
  c.norm_eps = read_float(file, a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_layout = arch->gguf_rope_layout;
  c.qkv_bias = arch->qkv_bias;
  c.qk_norm = arch->qk_norm;

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
  c.rope_freq_factors = read_rope_freq_factors(file, c);
  return c;
}

}  // namespace slm
