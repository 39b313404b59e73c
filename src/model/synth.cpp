// `slm synth`: random weights at a real model's shapes (synth_plan.h), written through the GGUF
// writer one tensor at a time, with a small SentencePiece-style vocabulary padded to the
// preset's size.
#include "slm/synth.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/ref/quant.h"
#include "slm/error.h"
#include "src/format/gguf_writer.h"
#include "src/model/config.h"
#include "src/model/synth_plan.h"

namespace slm {
namespace {

using synth::Role;
using synth::TensorPlan;

constexpr float kWeightStd =
    0.02f;  // like the initializers of these models: activations stay finite
constexpr int32_t kMinVocab = 512;

// splitmix64: a fast, well-mixed generator; one stream per (seed, tensor, row), so the bytes do
// not depend on the thread count.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// Approximately N(0, std²): the sum of the four 16-bit uniforms of one 64-bit draw (Irwin-Hall;
// variance 4·(2¹⁶²−1)/12), which is plenty for weights nobody reads for meaning.
void fill_normal(SplitMix64& rng, float* out, size_t n, float std) {
  constexpr double kMean = 4 * 65535.0 / 2;
  const double scale = std / 37837.23;  // sqrt(4 * (65536² − 1) / 12)
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng.next();
    const uint64_t sum = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
    out[i] = float((double(sum) - kMean) * scale);
  }
}

uint64_t stream_seed(uint64_t seed, size_t tensor, uint64_t row) {
  SplitMix64 mix{seed ^ (uint64_t(tensor) << 40) ^ row};
  mix.next();
  return mix.next();
}

// Fills one tensor: rows of dims[0] values made in f32, then converted by the reference
// quantizer (the same bytes as ggml's reference quantizers).
void fill_tensor(const TensorPlan& t, size_t index, uint64_t seed, std::span<uint8_t> out) {
  const size_t cols = size_t(t.dims[0]);
  const int64_t rows = t.dims.size() > 1 ? int64_t(t.dims[1]) : 1;
  const size_t row_bytes = slm::row_bytes(t.type, cols);
#pragma omp parallel
  {
    std::vector<float> row(cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      switch (t.role) {
        case Role::kNormWeight:
          std::fill(row.begin(), row.end(), 1.0f);
          break;
        case Role::kNormBias:
          std::fill(row.begin(), row.end(), 0.0f);
          break;
        default: {
          SplitMix64 rng{stream_seed(seed, index, uint64_t(r))};
          fill_normal(rng, row.data(), cols, kWeightStd);
        }
      }
      ref::quantize_row(t.type, row.data(), out.data() + size_t(r) * row_bytes, cols);
    }
  }
}

// A SentencePiece ("llama") vocabulary both slm and llama.cpp accept: <unk>, <s>, </s>, the 256
// byte-fallback tokens, then pieces (printable ASCII, then lowercase strings of growing length,
// each with and without the ▁ word prefix) until `n` tokens. Shorter pieces score higher, so
// words are built from the longest pieces SPM merging can reach.
struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

Vocab make_vocab(size_t n) {
  enum : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };
  Vocab v;
  const auto add = [&](std::string piece, float score, int32_t type) {
    if (v.tokens.size() >= n) return false;
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
    return true;
  };
  add("<unk>", 0, kUnknown);
  add("<s>", 0, kControl);
  add("</s>", 0, kControl);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, kByte);
  const std::string kSpace = "\xE2\x96\x81";  // ▁, SentencePiece's word boundary
  float score = 0;
  const auto add_piece = [&](const std::string& piece) {
    return add(kSpace + piece, --score, kNormal) && add(piece, --score, kNormal);
  };
  add(kSpace, --score, kNormal);
  for (char c = 33; c < 127; ++c) add_piece(std::string(1, c));
  for (size_t len = 2; v.tokens.size() < n; ++len) {
    std::string piece(len, 'a');
    while (true) {
      if (!add_piece(piece)) return v;
      size_t i = len;  // next string of this length, like an odometer
      while (i > 0 && piece[i - 1] == 'z') piece[--i] = 'a';
      if (i == 0) break;
      ++piece[i - 1];
    }
  }
  return v;
}

void set_metadata(GgufWriter& w, const synth::Shape& s, const synth::FileType& ft, uint64_t seed) {
  const std::string a(synth::arch_name(s.arch));
  w.set_string("general.architecture", a);
  w.set_string("general.name", fmt::format("synthetic {}", s.name));
  w.set_string(
      "general.description",
      fmt::format("random weights (slm synth, seed {}) at the shapes of {}", seed, s.source));
  w.set_u32("general.file_type", ft.ftype);
  w.set_u32("general.quantization_version", 2);
  ModelConfig c;
  c.architecture = a;
  c.n_vocab = s.n_vocab;
  c.n_ctx_train = s.n_ctx;
  c.n_embd = s.n_embd;
  c.n_layer = s.n_layer;
  c.n_ff = s.n_ff;
  c.n_head = s.n_head;
  c.n_head_kv = s.n_head_kv;
  c.head_dim = synth::head_dim(s);
  c.n_rot = s.n_rot;
  c.rope_freq_base = s.rope_theta;
  c.norm_kind = s.arch == synth::Arch::kPhi2 ? NormKind::kLayer : NormKind::kRms;
  c.norm_eps = s.norm_eps;
  write_core_hparams(w, c);
  if (s.arch == synth::Arch::kGemma2) {  // gemma-2-2b's config.json
    w.set_f32(a + ".attn_logit_softcapping", 50.0f);
    w.set_f32(a + ".final_logit_softcapping", 30.0f);
    w.set_u32(a + ".attention.sliding_window", 4096);
  }

  const Vocab v = make_vocab(size_t(s.n_vocab));
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_array("tokenizer.ggml.scores", v.scores);
  w.set_array("tokenizer.ggml.token_type", v.types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

template <class T, class F>
std::string names_of(const std::vector<T>& items, F name) {
  std::string out;
  for (const T& item : items) out += (out.empty() ? "" : ", ") + std::string(name(item));
  return out;
}

}  // namespace

std::vector<SynthPreset> synth_presets() {
  std::vector<SynthPreset> out;
  for (const synth::Shape& s : synth::shapes()) {
    const std::string_view arch = synth::arch_name(s.arch);
    out.push_back(SynthPreset{std::string(s.name), std::string(s.source), std::string(arch),
                              is_supported_architecture(arch)});
  }
  return out;
}

std::vector<std::string> synth_types() {
  std::vector<std::string> out;
  for (const synth::FileType& t : synth::file_types()) out.emplace_back(t.name);
  return out;
}

SynthResult synthesize(const std::string& path, const SynthOptions& options) {
  const synth::Shape* preset = synth::find_shape(options.preset);
  if (preset == nullptr) {
    throw InvalidArgumentError(
        fmt::format("unknown preset '{}' (presets: {})", options.preset,
                    names_of(synth::shapes(), [](const synth::Shape& s) { return s.name; })));
  }
  const synth::FileType* ft = synth::find_file_type(options.type);
  if (ft == nullptr) {
    throw InvalidArgumentError(fmt::format(
        "unknown type '{}' (types: {})", options.type,
        names_of(synth::file_types(), [](const synth::FileType& t) { return t.name; })));
  }
  synth::Shape shape = *preset;
  if (options.layers < 0 || options.layers > shape.n_layer) {
    throw InvalidArgumentError(fmt::format("layers {} is out of range for {} (1 to {}, 0 = all)",
                                           options.layers, shape.name, shape.n_layer));
  }
  if (options.vocab_size != 0 &&
      (options.vocab_size < kMinVocab || options.vocab_size > shape.n_vocab)) {
    throw InvalidArgumentError(
        fmt::format("vocab size {} is out of range for {} ({} to {}, 0 = "
                    "the preset's)",
                    options.vocab_size, shape.name, kMinVocab, shape.n_vocab));
  }
  if (options.layers > 0) shape.n_layer = options.layers;
  if (options.vocab_size > 0) shape.n_vocab = options.vocab_size;

  GgufWriter writer;
  set_metadata(writer, shape, *ft, options.seed);
  std::vector<TensorPlan> plan = synth::plan_tensors(shape, *ft);
  SynthResult result;
  uint64_t total = 0;
  for (const TensorPlan& t : plan) {
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    result.parameter_count += n;
    total += slm::row_bytes(t.type, size_t(t.dims[0])) * (n / t.dims[0]);
  }
  uint64_t done = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorPlan* t = &plan[i];
    writer.add_tensor_generated(t->name, t->dims, t->type, [&, t, i](std::span<uint8_t> out) {
      fill_tensor(*t, i, options.seed, out);
      done += out.size();
      if (options.on_progress) options.on_progress(done, total);
    });
  }
  writer.write(path);
  result.tensor_count = plan.size();
  result.file_bytes = writer.layout().file_size;
  return result;
}

}  // namespace slm
