// Tensor conversion and the per-tensor type choice of `slm quantize` (see quantize.h).
#include "src/model/quantize.h"

#include <charconv>
#include <cstring>

#include "kernels/ref/quant.h"
#include "src/model/synth_plan.h"

namespace slm::quant {

bool is_weight_matrix(std::string_view name, size_t n_dims) {
  return n_dims >= 2 && name.ends_with(".weight") &&
         name.find("ffn_gate_inp") == std::string_view::npos;
}

bool is_float_type(DType type) {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16;
}

const std::vector<Target>& targets() {
  // ftype: llama_ftype. Uniform K-quants are written as the _S file types (14, 16), the
  // nearest llama.cpp names.
  // clang-format off
  static const std::vector<Target> kTargets = {
    {"f32",    0,  DType::kF32,  false, false},
    {"f16",    1,  DType::kF16,  false, false},
    {"bf16",   32, DType::kBF16, false, false},
    {"q8_0",   7,  DType::kQ8_0, false, false},
    {"q4_0",   2,  DType::kQ4_0, false, false},
    {"q4_1",   3,  DType::kQ4_1, false, false},
    {"q5_0",   8,  DType::kQ5_0, false, false},
    {"q5_1",   9,  DType::kQ5_1, false, false},
    {"q4_k",   14, DType::kQ4_K, false, false},
    {"q5_k",   16, DType::kQ5_K, false, false},
    {"q6_k",   18, DType::kQ6_K, false, false},
    {"q4_k_m", 15, DType::kQ4_K, true,  true},
    {"q5_k_m", 17, DType::kQ5_K, true,  true},
  };
  // clang-format on
  return kTargets;
}

const Target* find_target(std::string_view name) { return synth::find_by_name(targets(), name); }

namespace {

bool fits(DType type, uint64_t cols) { return cols % traits(type).block_elems == 0; }

// "blk.N.rest" -> N and rest; -1 outside the blocks.
int32_t layer_of(std::string_view name, std::string_view* rest) {
  *rest = name;
  if (!name.starts_with("blk.")) return -1;
  const char* first = name.data() + 4;
  const char* last = name.data() + name.size();
  int32_t layer = -1;
  const auto [end, ec] = std::from_chars(first, last, layer);
  if (ec != std::errc() || end == last || *end != '.') return -1;
  *rest = std::string_view(end + 1, size_t(last - end - 1));
  return layer;
}

synth::Role role_of(std::string_view name, std::string_view rest) {
  if (name == "token_embd.weight") return synth::Role::kTokenEmbd;
  if (name == "output.weight") return synth::Role::kOutput;
  if (rest == "attn_v.weight") return synth::Role::kAttnV;
  if (rest == "ffn_down.weight") return synth::Role::kFfnDown;
  return synth::Role::kMatrix;
}

}  // namespace

DType matrix_type(const Target& target, std::string_view name, uint64_t cols, DType current,
                  const ModelShape& shape) {
  if (target.quantizer_rules) {
    std::string_view rest;
    const int32_t layer = layer_of(name, &rest);
    const synth::FileType ft{target.name, target.ftype, target.base, true, target.more_bits};
    // quantizer_type applies the K-quant fallback itself.
    const DType type =
        synth::quantizer_type(ft, role_of(name, rest), layer, shape.n_layer, cols, shape.tied);
    return fits(type, cols) ? type : DType::kF16;
  }
  if (fits(target.base, cols)) return target.base;
  const DType fallback = synth::k_quant_fallback(target.base);
  return fits(fallback, cols) ? fallback : current;
}

void convert(DType from, std::span<const uint8_t> in, uint64_t cols, DType to,
             std::span<uint8_t> out) {
  if (from == to) {
    std::memcpy(out.data(), in.data(), out.size());
    return;
  }
  const size_t in_row = row_bytes(from, size_t(cols)), out_row = row_bytes(to, size_t(cols));
  const int64_t rows = int64_t(in.size() / in_row);
  // Rows are independent: the bytes do not depend on the thread count.
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      ref::dequantize_row(from, in.data() + size_t(r) * in_row, row.data(), size_t(cols));
      ref::quantize_row(to, row.data(), out.data() + size_t(r) * out_row, size_t(cols));
    }
  }
}

void quantize_weights(Weights& w, const Target& target, const MatrixConverted& on_matrix) {
  std::vector<Matrix*> matrices{&w.token_embd};
  for (LayerWeights& l : w.layers) {
    // Routers stay as stored (llama-quantize keeps ffn_gate_inp in F32).
    for (Matrix* m : layer_matrices(l)) {
      if (m != &l.router && m != &l.shared_expert_gate) matrices.push_back(m);
    }
  }
  if (!w.tied_output) matrices.push_back(&w.output);
  const ModelShape shape{int32_t(w.layers.size()), w.tied_output};
  for (size_t i = 0; i < matrices.size(); ++i) {
    Matrix& m = *matrices[i];
    const uint64_t cols = uint64_t(m.cols), rows = uint64_t(m.rows);
    const uint64_t before = row_bytes(m.type, size_t(cols)) * rows;
    const DType to =
        is_float_type(m.type) ? matrix_type(target, m.name, cols, m.type, shape) : m.type;
    const Matrix old = m;
    if (to != m.type) {
      std::vector<uint8_t>& bytes = w.quantized.emplace_back(row_bytes(to, size_t(cols)) * rows);
      convert(m.type, {static_cast<const uint8_t*>(m.data), size_t(before)}, cols, to, bytes);
      m.type = to;
      m.data = bytes.data();
    }
    if (on_matrix)
      on_matrix(old, to, before, row_bytes(to, size_t(cols)) * rows, i + 1, matrices.size());
  }
  if (w.tied_output) w.output = w.token_embd;
}

}  // namespace slm::quant
