// Scalar reference versions of the element-wise and row ops of a decoder forward pass.
// Pure functions on raw memory; they know nothing about models.
#pragma once

#include <cstddef>
#include <cstdint>

namespace slm::ref {

// y = x / sqrt(mean(x²) + eps) * w        (w may be null: no weight)
void rms_norm(const float* x, const float* w, float eps, float* y, size_t n);

// LayerNorm: y = (x − mean(x)) / sqrt(var(x) + eps) · w + b, with the biased variance
// (w, b may be null: no weight, no bias).
void layer_norm(const float* x, const float* w, const float* b, float eps, float* y, size_t n);

// Rotary embedding tables for one position: for pair i < n_rot/2,
// θ_i = pos · base^(−2i/n_rot), cs[2i] = cos θ_i, cs[2i+1] = sin θ_i.
// θ is built by repeated multiplication in float, like the reference implementation does.
// freq_factors (n_rot/2 values, or null for none) divide each θ_i: θ_i / f_i (Llama 3's
// frequency scaling, ggml's rope_freqs; LongRoPE's short/long factors). `scale` multiplies both
// cos and sin (LongRoPE's attention factor; 1 otherwise).
void rope_table(int32_t pos, size_t n_rot, float freq_base, float* cs,
                const float* freq_factors = nullptr, float scale = 1.0f);
// "Normal" RoPE (GPT-J / llama.cpp LLAMA_ROPE_TYPE_NORM): rotates adjacent pairs (2i, 2i+1) of
// the first n_rot dims of one head: (a, b) -> (a cos − b sin, a sin + b cos).
void rope_interleaved(float* head, const float* cs, size_t n_rot);
// NeoX RoPE: rotates pairs (i, i + n_rot/2).
void rope_half_split(float* head, const float* cs, size_t n_rot);

// In place: x = exp(x − max) / Σ exp(x − max)
void softmax(float* x, size_t n);

// y = silu(g) ⊙ u, silu(g) = g / (1 + exp(−g))
void swiglu(const float* g, const float* u, float* y, size_t n);

// GELU, tanh form: y = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))  (evaluated as
// x / (1 + e^(−2z)), the same function)
void gelu(const float* x, float* y, size_t n);

// y = gelu(g) ⊙ u (GeGLU, the tanh form of gelu above)
void geglu(const float* g, const float* u, float* y, size_t n);

// In place: x = s · x
void scale(float* x, float s, size_t n);

// In place: x = cap · tanh(x / cap) (soft-capping: Gemma 2's attention scores and logits)
void softcap(float* x, float cap, size_t n);

// y += x
void add(float* y, const float* x, size_t n);

// y += a · x   (a mixture of experts' weighted sum of expert outputs)
void add_scaled(float* y, const float* x, float a, size_t n);

// Where one head's key (or value) rows of consecutive positions live. A cache keeps them in pages
// of `page_rows` positions, rows `stride` bytes apart within a page: position p is row
// p % page_rows of pages[p / page_rows], the head's elements `offset` bytes into the row. A
// contiguous cache is a single page.
struct KvRows {
  const uint8_t* const* pages = nullptr;
  size_t page_rows = 1;
  size_t stride = 0;
  size_t offset = 0;
  size_t first = 0;  // the position of key 0

  const uint8_t* row(size_t j) const {
    const size_t p = first + j;
    return pages[p / page_rows] + (p % page_rows) * stride + offset;
  }
  // rows[i] = row(j + i) for i < n, stepping through pages without a division per row.
  void rows(size_t j, size_t n, const uint8_t** out) const {
    size_t page = (first + j) / page_rows, at = (first + j) % page_rows;
    for (size_t i = 0; i < n; ++i) {
      out[i] = pages[page] + at * stride + offset;
      if (++at == page_rows) ++page, at = 0;
    }
  }
};

// out = Σ_j softmax_j(scale · q·k_j) · v_j over n_keys key/value rows (k.row(j), v.row(j));
// `kv_is_f16` selects the element type of the rows (fp16 or f32). scores must hold n_keys
// floats. The result does not depend on how the rows are paged.
void attention(const float* q, const KvRows& k, const KvRows& v, bool kv_is_f16, size_t n_keys,
               size_t head_dim, float scale, float* scores, float* out);

// attention() with the scores soft-capped before the softmax:
// out = Σ_j softmax_j(cap · tanh(scale · q·k_j / cap)) · v_j (Gemma 2).
void attention_softcapped(const float* q, const KvRows& k, const KvRows& v, bool kv_is_f16,
                          size_t n_keys, size_t head_dim, float scale, float cap,
                          float* scores, float* out);

// attention_softcapped() (cap 0: attention()) over rows of ggml Q8_0 blocks: each head's
// head_dim elements (a multiple of 32) are head_dim / 32 blocks of an fp16 scale d and 32 int8
// quants q, standing for the values d·q. Those products are exact in float (11 × 8 significant
// bits), so the result is bit-identical to attention() over an F32 cache holding the dequantized
// rows: only the cache's storage is quantized, never q or the scores.
void attention_q8_0(const float* q, const KvRows& k, const KvRows& v, size_t n_keys,
                    size_t head_dim, float scale, float cap, float* scores, float* out);

}  // namespace slm::ref
