// `slm convert`: a Hugging Face directory to GGUF, with llama.cpp's names (convert_hf_to_gguf.py):
// metadata from config.json, the tensors the loader reads under their GGUF names, q/k rows
// permuted where llama.cpp's files use interleaved RoPE, each tensor converted only while the
// file is written.
#include "slm/convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include "kernels/ref/quant.h"
#include "slm/error.h"
#include "src/format/gguf_writer.h"
#include "src/format/safetensors.h"
#include "src/model/architecture.h"
#include "src/model/convert_tokenizer.h"
#include "src/model/hf_config.h"
#include "src/model/hf_weights.h"
#include "src/model/quantize.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConvertTypes[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"};

// Hugging Face keeps each head's q/k rows as two halves (rotated pairs (i, i + d/2)); GGUF llama
// files interleave them (pairs (2i, 2i+1)). Output row h·d + 2i + j comes from row
// h·d + j·d/2 + i (llama.cpp's permute: reshape(heads, 2, d/2, cols).swapaxes(1, 2)).
void interleave_rope_rows(const uint8_t* src, uint8_t* dst, uint64_t rows, size_t row_size,
                          uint64_t heads) {
  const uint64_t d = rows / heads, half = d / 2;
  for (uint64_t h = 0; h < heads; ++h) {
    for (uint64_t i = 0; i < half; ++i) {
      for (uint64_t j = 0; j < 2; ++j) {
        std::memcpy(dst + (h * d + 2 * i + j) * row_size, src + (h * d + j * half + i) * row_size,
                    row_size);
      }
    }
  }
}

// Llama 3 RoPE scaling: llama.cpp's converter writes the frequency divisors computed from
// config.json's rope_scaling as the F32 tensor rope_freqs.weight [n_rot/2] (and no
// rope.scaling.* keys for this type). Returns the tensors added (0 or 1).
size_t add_rope_freqs(const ModelConfig& c, GgufWriter& w) {
  if (c.rope_freq_factors.empty()) return 0;
  const auto* bytes = reinterpret_cast<const uint8_t*>(c.rope_freq_factors.data());
  w.add_tensor("rope_freqs.weight", {c.rope_freq_factors.size()}, DType::kF32,
               {bytes, c.rope_freq_factors.size() * sizeof(float)});
  return 1;
}

// One tensor of the GGUF file: one source tensor, or the n_expert per-expert tensors
// (`blk.L.ffn_gate.E.weight`, as Hugging Face stores experts) stacked into llama.cpp's
// `blk.L.ffn_gate_exps.weight`.
struct OutputTensor {
  std::string name;
  std::vector<const SourceTensor*> parts;
};

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// "blk.L.ffn_gate.E.weight" (also ffn_up, ffn_down) → ("blk.L.ffn_gate", "E"); nullopt for any
// other name.
std::optional<std::pair<std::string_view, std::string_view>> expert_part(std::string_view name) {
  constexpr std::string_view kBlock = "blk.", kWeight = ".weight";
  if (!name.starts_with(kBlock) || !name.ends_with(kWeight)) return std::nullopt;
  const std::string_view stem = name.substr(0, name.size() - kWeight.size());
  const size_t dot = stem.rfind('.');
  const std::string_view tensor = stem.substr(0, dot), index = stem.substr(dot + 1);
  for (const std::string_view kind : {".ffn_gate", ".ffn_up", ".ffn_down"}) {
    if (all_digits(index) && tensor.ends_with(kind) &&
        all_digits(tensor.substr(kBlock.size(), tensor.size() - kBlock.size() - kind.size()))) {
      return std::pair{tensor, index};
    }
  }
  return std::nullopt;
}

std::vector<OutputTensor> stack_experts(
    const std::vector<std::pair<std::string, SourceTensor>>& sources, const ModelConfig& c) {
  std::vector<OutputTensor> out;
  for (const auto& [name, t] : sources) {
    const auto expert = expert_part(name);
    if (!expert) {
      out.push_back({name, {&t}});
      continue;
    }
    const std::string stacked = std::string(expert->first) + "_exps.weight";
    if (expert->second == "0") out.push_back({stacked, {}});
    OutputTensor& o = out.back();
    // The loader asks for experts 0..n_expert-1 in order, all of one shape.
    if (o.name != stacked || expert->second != std::to_string(o.parts.size()) ||
        (!o.parts.empty() && (o.parts[0]->dims != t.dims || o.parts[0]->type != t.type))) {
      throw FormatError(fmt::format("{}: expert tensor '{}' does not stack with its {} siblings",
                                    t.file, t.name, c.n_expert));
    }
    o.parts.push_back(&t);
  }
  return out;
}

// The mixture-of-experts keys config.cpp (and llama.cpp) read.
void write_expert_keys(GgufWriter& w, const ModelConfig& c) {
  const std::string a = c.architecture + ".";
  w.set_u32(a + "expert_count", uint32_t(c.n_expert));
  w.set_u32(a + "expert_used_count", uint32_t(c.n_expert_used));
  w.set_u32(a + "expert_feed_forward_length", uint32_t(c.n_ff_expert));
  if (c.n_ff_shared > 0) {
    w.set_u32(a + "expert_shared_feed_forward_length", uint32_t(c.n_ff_shared));
  }
  w.set(a + "expert_weights_norm", GgufMetaValue::boolean(c.expert_weights_norm));
}

// Writes the keys llama.cpp reads for the architecture's per-layer windows and RoPE bases,
// soft-caps and multipliers (what read_config reads back). What its GGUF layout cannot say is
// refused rather than written as a different model.
void write_features(GgufWriter& w, const Architecture& arch, const ModelConfig& c,
                    const std::string& dir) {
  const std::string a = c.architecture + ".";
  const auto refuse = [&](std::string_view what) {
    throw UnsupportedError(
        fmt::format("{}: {} cannot be written in llama.cpp's '{}' GGUF layout (slm convert)", dir,
                    what, c.architecture));
  };
  // Sliding windows: one window, on the layers of the architecture's fixed pattern.
  std::vector<float> rope_base(size_t(c.n_layer), c.rope_freq_base);  // as read back
  // (Architectures with a window on every layer write it with the other hyper-parameters.)
  if (!c.sliding_window.empty() && !arch.gguf_window_every_layer) {
    if (arch.gguf_swa_period == 0) refuse("sliding-window attention");
    const int32_t window = *std::max_element(c.sliding_window.begin(), c.sliding_window.end());
    float swa_base = -1;
    for (int32_t l = 0; l < c.n_layer; ++l) {
      const bool slides = (l + 1) % arch.gguf_swa_period != 0;
      if (c.window(l) != (slides ? window : 0)) refuse("this pattern of sliding-window layers");
      if (slides && swa_base < 0) swa_base = c.rope_base(l);
      if (slides) rope_base[size_t(l)] = swa_base;
    }
    w.set_u32(a + "attention.sliding_window", uint32_t(window));
    if (swa_base != (arch.gguf_rope_base_swa > 0 ? arch.gguf_rope_base_swa : c.rope_freq_base)) {
      w.set_f32(a + "rope.freq_base_swa", swa_base);
    }
  }
  if (arch.gguf_no_rope_period > 0) {
    for (int32_t l = arch.gguf_no_rope_period - 1; l < c.n_layer; l += arch.gguf_no_rope_period) {
      rope_base[size_t(l)] = 0.0f;
    }
  }
  for (int32_t l = 0; l < c.n_layer; ++l) {
    if (c.rope_base(l) != rope_base[size_t(l)]) {
      refuse(fmt::format("layer {}'s RoPE (base {}, 0: none)", l, c.rope_base(l)));
    }
  }
  // Linear RoPE scaling: one factor, on every layer but the sliding layers that have their own
  // base (as read back).
  if (!c.layer_rope_linear.empty()) {
    const float factor = *std::max_element(c.layer_rope_linear.begin(), c.layer_rope_linear.end());
    for (int32_t l = 0; l < c.n_layer; ++l) {
      const bool own_base = arch.gguf_rope_base_swa > 0 && c.window(l) > 0;
      if (c.rope_linear(l) != (own_base ? 1.0f : factor)) {
        refuse(fmt::format("layer {}'s linear RoPE scaling (factor {})", l, c.rope_linear(l)));
      }
    }
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_f32(a + "rope.scaling.factor", factor);
  }
  if (c.attn_softcap > 0) w.set_f32(a + "attn_logit_softcapping", c.attn_softcap);
  if (c.final_softcap > 0) w.set_f32(a + "final_logit_softcapping", c.final_softcap);
  if (arch.gguf_multipliers) {
    w.set_f32(a + "embedding_scale", c.embedding_scale);
    w.set_f32(a + "residual_scale", c.residual_scale);
    if (c.attention_scale > 0) w.set_f32(a + "attention.scale", c.attention_scale);
    w.set_f32(a + "logit_scale", 1.0f / c.logit_scale);
    return;
  }
  const float embedding_scale = arch.embedding_scale_sqrt ? std::sqrt(float(c.n_embd)) : 1.0f;
  if (c.embedding_scale != embedding_scale || c.residual_scale != 1.0f || c.logit_scale != 1.0f) {
    refuse("embedding, residual or logit multipliers");
  }
  if (c.attention_scale > 0 &&
      std::fabs(c.attention_scale * std::sqrt(float(c.head_dim)) - 1.0f) > 1e-6f) {
    refuse("an attention scale other than 1/√head_dim (query_pre_attn_scalar)");
  }
}

}  // namespace

std::vector<std::string> convert_types() {
  return {std::begin(kConvertTypes), std::end(kConvertTypes)};
}

ConvertResult convert_hf_model(const std::string& dir, const std::string& out,
                               const ConvertOptions& options) {
  if (std::find(std::begin(kConvertTypes), std::end(kConvertTypes), options.type) ==
      std::end(kConvertTypes)) {
    throw InvalidArgumentError(
        fmt::format("unknown type '{}' (types: f32, f16, bf16, q8_0, "
                    "q4_0, q4_k, q6_k)",
                    options.type));
  }
  const quant::Target& target = *quant::find_target(options.type);
  const HfConfig hf = read_hf_config((fs::path(dir) / "config.json").string());
  const ModelConfig& c = hf.model;
  const Architecture& arch = *find_architecture(c.architecture);
  if (c.expert_routing != ExpertRouting::kSoftmaxTopK || c.norm_kind != arch.norm_kind) {
    // llama.cpp's phimoe graph is softmax top-k with RMSNorm + bias: another model.
    throw UnsupportedError(fmt::format(
        "{}: slm convert cannot write {} as GGUF: the GGUF '{}' architecture computes softmax "
        "top-k routing and RMSNorm, not this checkpoint's sparsemixer and LayerNorm",
        dir, c.architecture, c.architecture));
  }
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir);
  // The tensors the model runs on, by GGUF name: what the loader reads is what the file holds.
  const auto sources = list_weights(HfTensorSource(checkpoint, hf), c);
  // llama.cpp's files of architectures with interleaved RoPE have their q/k rows reordered.
  const bool interleave = arch.gguf_rope_layout == RopeLayout::kInterleaved;
  const auto rope_heads = [&](const std::string& gguf_name) -> uint64_t {
    if (!interleave) return 0;
    if (gguf_name.ends_with(".attn_q.weight")) return uint64_t(c.n_head);
    if (gguf_name.ends_with(".attn_k.weight")) return uint64_t(c.n_head_kv);
    return 0;
  };

  GgufWriter w;
  const std::string a = c.architecture + ".";
  w.set_string("general.architecture", c.architecture);
  w.set_string("general.name", c.name);
  write_core_hparams(w, c);
  size_t extra_tensors = 0;  // written from the config, not read by the loader
  if (!c.sliding_window.empty() && arch.gguf_window_every_layer) {
    w.set_u32(a + "attention.sliding_window", uint32_t(c.sliding_window.front()));
  }
  if (!c.rope_freq_factors_long.empty()) {
    // LongRoPE as convert_hf_to_gguf.py writes it (config.cpp reads it back).
    w.set_u32(a + "rope.scaling.original_context_length", uint32_t(c.rope_long_from));
    w.set_f32(a + "rope.scaling.attn_factor", c.rope_attn_factor);
    const uint64_t half = uint64_t(c.n_rot / 2);
    for (const auto& [name, factors] :
         {std::pair{"rope_factors_long.weight", &c.rope_freq_factors_long},
          std::pair{"rope_factors_short.weight", &c.rope_freq_factors}}) {
      w.add_tensor_view(name, {half}, DType::kF32,
                        std::span(reinterpret_cast<const uint8_t*>(factors->data()),
                                  factors->size() * sizeof(float)));
      ++extra_tensors;
    }
  } else {
    extra_tensors += add_rope_freqs(c, w);
  }
  w.set_u32("general.file_type", target.ftype);
  write_features(w, arch, c, dir);

  if (c.n_expert > 0) write_expert_keys(w, c);

  ConvertResult result;
  const quant::ModelShape shape{c.n_layer, hf.tie_word_embeddings};
  bool any_quantized = false;
  const std::vector<OutputTensor> outputs = stack_experts(sources, c);
  const size_t count = outputs.size();
  for (size_t i = 0; i < count; ++i) {
    const std::string& gguf_name = outputs[i].name;
    const SourceTensor& t = *outputs[i].parts.front();
    const DType from = t.type;
    if (t.dims.empty() || t.dims.size() > 2) {
      throw FormatError(fmt::format("{}: tensor '{}' has {} dimensions, expected 1 or 2", t.file,
                                    t.name, t.dims.size()));
    }
    std::vector<uint64_t> dims = t.dims;
    // llama.cpp's shared-expert gate is a vector [n_embd] (transformers: a [1, n_embd] Linear).
    if (gguf_name.ends_with(".ffn_gate_inp_shexp.weight") && dims.size() == 2 && dims[1] == 1) {
      dims.pop_back();
    }
    const uint64_t cols = dims[0], rows = dims.size() > 1 ? dims[1] : 1;
    std::vector<const void*> parts;
    for (const SourceTensor* part : outputs[i].parts) parts.push_back(part->data);
    if (parts.size() > 1) dims.push_back(parts.size());  // experts stacked: [cols, rows, n]
    const uint64_t heads = rope_heads(gguf_name);
    if (heads > 0 && rows % (2 * heads) != 0) {
      throw FormatError(fmt::format("{}: tensor '{}' has {} rows, not {} heads of an even size",
                                    t.file, t.name, rows, heads));
    }
    DType to = DType::kF32;  // norms stay F32 in every llama.cpp file type
    if (quant::is_weight_matrix(gguf_name, dims.size())) {
      to = quant::matrix_type(target, gguf_name, cols, from, shape);
      if (cols % traits(target.base).block_elems != 0) {
        result.fallbacks.push_back(fmt::format("{}: {} (rows of {}, not whole {} blocks)",
                                               gguf_name, dtype_name(to), cols,
                                               dtype_name(target.base)));
      }
    }
    any_quantized = any_quantized || traits(to).block_elems > 1;
    const size_t n_bytes = row_bytes(from, size_t(cols)) * size_t(rows);
    const size_t out_bytes = row_bytes(to, size_t(cols)) * size_t(rows);
    result.bytes_in += n_bytes * parts.size();
    const std::string name = gguf_name;
    // llama.cpp's files hold the norm weight that is used (Gemma's checkpoints store w − 1).
    const float norm_offset = gguf_name.ends_with("norm.weight") ? c.norm_weight_offset : 0.0f;
    w.add_tensor_generated(
        name, dims, to,
        [&options, parts, n_bytes, out_bytes, i, count, name, from, to, cols, rows, heads,
         norm_offset](std::span<uint8_t> dst) {
          if (options.on_tensor) options.on_tensor(i, count, name);
          // A copy first: safetensors data need not be aligned, and q/k rows are reordered.
          std::vector<uint8_t> src(n_bytes);
          for (size_t p = 0; p < parts.size(); ++p) {
            const auto* bytes = static_cast<const uint8_t*>(parts[p]);
            if (heads > 0) {
              interleave_rope_rows(bytes, src.data(), rows, row_bytes(from, size_t(cols)), heads);
            } else {
              std::memcpy(src.data(), bytes, src.size());
            }
            const std::span<uint8_t> part = dst.subspan(p * out_bytes, out_bytes);
            if (norm_offset != 0) {
              std::vector<float> values(size_t(cols * rows));
              ref::dequantize_row(from, src.data(), values.data(), values.size());
              for (float& v : values) v += norm_offset;
              quant::convert(DType::kF32,
                             {reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4},
                             cols, to, part);
            } else {
              quant::convert(from, src, cols, to, part);
            }
          }
        });
  }
  if (any_quantized) w.set_u32("general.quantization_version", 2);
  result.tensor_count = count + extra_tensors;
  result.tokenizer_note = write_gguf_tokenizer(dir, c.n_vocab, w);
  result.bytes_out = w.layout().file_size;
  w.write(out);
  return result;
}

}  // namespace slm
