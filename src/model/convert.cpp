// `slm convert`: a Hugging Face directory to GGUF, with llama.cpp's names (convert_hf_to_gguf.py):
// metadata from config.json, the tensors the loader reads under their GGUF names, q/k rows
// permuted where llama.cpp's files use interleaved RoPE, each tensor converted only while the
// file is written.
#include "slm/convert.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

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
  if (!c.sliding_window.empty()) {
    throw UnsupportedError(fmt::format(
        "{}: sliding-window attention is not written by slm convert yet (the GGUF '{}' "
        "architecture has no window)",
        dir, c.architecture));
  }
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir);
  // The tensors the model runs on, by GGUF name: what the loader reads is what the file holds.
  const auto sources = list_weights(HfTensorSource(checkpoint, hf), c);
  // llama.cpp's files of architectures with interleaved RoPE have their q/k rows reordered.
  const bool interleave = find_architecture(c.architecture)->gguf_rope_layout ==
                          RopeLayout::kInterleaved;
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
  w.set_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set_u32("general.file_type", target.ftype);

  ConvertResult result;
  const quant::ModelShape shape{c.n_layer, hf.tie_word_embeddings};
  bool any_quantized = false;
  const size_t count = sources.size();
  for (size_t i = 0; i < count; ++i) {
    const auto& [gguf_name, t] = sources[i];
    const DType from = t.type;
    if (t.dims.empty() || t.dims.size() > 2) {
      throw FormatError(fmt::format("{}: tensor '{}' has {} dimensions, expected 1 or 2", t.file,
                                    t.name, t.dims.size()));
    }
    const std::vector<uint64_t>& dims = t.dims;
    const uint64_t cols = dims[0], rows = dims.size() > 1 ? dims[1] : 1;
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
    result.bytes_in += n_bytes;
    const std::string name = gguf_name;
    const void* data = t.data;
    w.add_tensor_generated(
        name, dims, to,
        [&options, data, n_bytes, i, count, name, from, to, cols, rows, heads](std::span<uint8_t> dst) {
          if (options.on_tensor) options.on_tensor(i, count, name);
          // A copy first: safetensors data need not be aligned, and q/k rows are reordered.
          std::vector<uint8_t> src(n_bytes);
          const auto* bytes = static_cast<const uint8_t*>(data);
          if (heads > 0) {
            interleave_rope_rows(bytes, src.data(), rows, row_bytes(from, size_t(cols)), heads);
          } else {
            std::memcpy(src.data(), bytes, src.size());
          }
          quant::convert(from, src, cols, to, dst);
        });
  }
  if (any_quantized) w.set_u32("general.quantization_version", 2);
  result.tensor_count = count + add_rope_freqs(c, w);
  result.tokenizer_note = write_gguf_tokenizer(dir, c.n_vocab, w);
  result.bytes_out = w.layout().file_size;
  w.write(out);
  return result;
}

}  // namespace slm
