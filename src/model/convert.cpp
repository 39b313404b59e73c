// `slm convert`: a Hugging Face llama directory to GGUF, with llama.cpp's names (convert_hf_to_
// gguf.py's LlamaModel): metadata from config.json, tensors renamed, q/k rows permuted to the
// interleaved RoPE order, each tensor converted only while the file is written.
#include "slm/convert.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "slm/error.h"
#include "src/format/gguf_writer.h"
#include "src/format/safetensors.h"
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

struct Source {
  std::string gguf_name;
  const SafetensorsTensor* tensor;
  uint64_t rope_heads = 0;  // > 0: q/k rows to interleave, in this many heads
};

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
  if (c.architecture != "llama") {
    throw UnsupportedError(fmt::format("{}: slm convert writes the llama architecture only, not {}",
                                       dir, c.architecture));
  }
  if (!c.rope_freq_factors.empty()) {
    throw UnsupportedError(fmt::format(
        "{}: Llama 3 RoPE scaling (rope_freqs.weight) is not written by slm convert yet", dir));
  }
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir);
  const auto find = [&](const std::string& name) {
    const SafetensorsTensor* t = checkpoint.find_tensor(name);
    if (!t) throw FormatError(fmt::format("{}: missing tensor '{}'", dir, name));
    return t;
  };

  std::vector<Source> sources;
  sources.push_back({"token_embd.weight", find("model.embed_tokens.weight")});
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const std::string hp = fmt::format("model.layers.{}.", l), gp = fmt::format("blk.{}.", l);
    sources.push_back({gp + "attn_norm.weight", find(hp + "input_layernorm.weight")});
    sources.push_back(
        {gp + "attn_q.weight", find(hp + "self_attn.q_proj.weight"), uint64_t(c.n_head)});
    sources.push_back(
        {gp + "attn_k.weight", find(hp + "self_attn.k_proj.weight"), uint64_t(c.n_head_kv)});
    sources.push_back({gp + "attn_v.weight", find(hp + "self_attn.v_proj.weight")});
    sources.push_back({gp + "attn_output.weight", find(hp + "self_attn.o_proj.weight")});
    sources.push_back({gp + "ffn_norm.weight", find(hp + "post_attention_layernorm.weight")});
    sources.push_back({gp + "ffn_gate.weight", find(hp + "mlp.gate_proj.weight")});
    sources.push_back({gp + "ffn_down.weight", find(hp + "mlp.down_proj.weight")});
    sources.push_back({gp + "ffn_up.weight", find(hp + "mlp.up_proj.weight")});
  }
  sources.push_back({"output_norm.weight", find("model.norm.weight")});
  // A tied lm_head is no tensor in llama.cpp's files: the loader uses token_embd.
  if (!hf.tie_word_embeddings) sources.push_back({"output.weight", find("lm_head.weight")});

  GgufWriter w;
  const std::string a = "llama.";
  w.set_string("general.architecture", "llama");
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
    const Source& s = sources[i];
    const SafetensorsTensor& t = *s.tensor;
    const std::string file = checkpoint.file_of(t.name);
    const DType from = hf_weight_type(t, file);
    if (t.shape.empty() || t.shape.size() > 2) {
      throw FormatError(fmt::format("{}: tensor '{}' has {} dimensions, expected 1 or 2", file,
                                    t.name, t.shape.size()));
    }
    // PyTorch [rows, cols] is ggml's [cols, rows].
    const std::vector<uint64_t> dims(t.shape.rbegin(), t.shape.rend());
    const uint64_t cols = dims[0], rows = t.n_elements / cols;
    if (s.rope_heads > 0 && rows % (2 * s.rope_heads) != 0) {
      throw FormatError(fmt::format("{}: tensor '{}' has {} rows, not {} heads of an even size",
                                    file, t.name, rows, s.rope_heads));
    }
    DType to = DType::kF32;  // norms stay F32 in every llama.cpp file type
    if (quant::is_weight_matrix(s.gguf_name, dims.size())) {
      to = quant::matrix_type(target, s.gguf_name, cols, from, shape);
      if (cols % traits(target.base).block_elems != 0) {
        result.fallbacks.push_back(fmt::format("{}: {} (rows of {}, not whole {} blocks)",
                                               s.gguf_name, dtype_name(to), cols,
                                               dtype_name(target.base)));
      }
    }
    any_quantized = any_quantized || traits(to).block_elems > 1;
    result.bytes_in += t.n_bytes;
    const std::string name = s.gguf_name;
    const uint64_t heads = s.rope_heads;
    w.add_tensor_generated(
        name, dims, to,
        [&options, &t, i, count, name, from, to, cols, rows, heads](std::span<uint8_t> dst) {
          if (options.on_tensor) options.on_tensor(i, count, name);
          // A copy first: safetensors data need not be aligned, and q/k rows are reordered.
          std::vector<uint8_t> src(size_t(t.n_bytes));
          if (heads > 0) {
            interleave_rope_rows(t.data, src.data(), rows, row_bytes(from, size_t(cols)), heads);
          } else {
            std::memcpy(src.data(), t.data, src.size());
          }
          quant::convert(from, src, cols, to, dst);
        });
  }
  if (any_quantized) w.set_u32("general.quantization_version", 2);
  result.tensor_count = count;
  std::error_code ec;
  result.tokenizer_note =
      fs::exists(fs::path(dir) / "tokenizer.json", ec)
          ? "no tokenizer written: writing GGUF tokenizer keys from tokenizer.json is not "
            "implemented yet (run the file with --tokenizer DIR/tokenizer.json)"
          : "no tokenizer written: the directory has no tokenizer.json";
  result.bytes_out = w.layout().file_size;
  w.write(out);
  return result;
}

}  // namespace slm
