#include "kernels/ref/ops.h"

#include <cmath>

#include "kernels/ref/quant.h"

namespace slm::ref {

void rms_norm(const float* x, const float* w, float eps, float* y, size_t n) {
  double sum_sq = 0;  // double: the mean of squares over thousands of values
  for (size_t i = 0; i < n; ++i) sum_sq += double(x[i]) * double(x[i]);
  const float scale = 1.0f / std::sqrt(float(sum_sq / double(n)) + eps);
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void layer_norm(const float* x, const float* w, const float* b, float eps, float* y, size_t n) {
  double sum = 0;  // double, as rms_norm: sums over thousands of values
  for (size_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / double(n);
  double sum_sq = 0;
  for (size_t i = 0; i < n; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
  const float scale = 1.0f / std::sqrt(float(sum_sq / double(n)) + eps);
  const auto m = float(mean);
  for (size_t i = 0; i < n; ++i) {
    y[i] = (x[i] - m) * scale * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
  }
}

void rope_table(int32_t pos, size_t n_rot, float freq_base, float* cs, const float* freq_factors,
                float scale) {
  const float theta_scale = std::pow(freq_base, -2.0f / float(n_rot));
  float theta = float(pos);
  for (size_t i = 0; i < n_rot / 2; ++i) {
    const float t = freq_factors ? theta / freq_factors[i] : theta;
    cs[2 * i] = std::cos(t) * scale;
    cs[2 * i + 1] = std::sin(t) * scale;
    theta *= theta_scale;
  }
}

void rope_interleaved(float* head, const float* cs, size_t n_rot) {
  for (size_t i = 0; i < n_rot / 2; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float a = head[2 * i], b = head[2 * i + 1];
    head[2 * i] = a * c - b * s;
    head[2 * i + 1] = a * s + b * c;
  }
}

void rope_half_split(float* head, const float* cs, size_t n_rot) {
  const size_t half = n_rot / 2;
  for (size_t i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float a = head[i], b = head[i + half];
    head[i] = a * c - b * s;
    head[i + half] = a * s + b * c;
  }
}

void softmax(float* x, size_t n) {
  float max = -INFINITY;
  for (size_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* g, const float* u, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void gelu(const float* x, float* y, size_t n) {
  // 0.5 (1 + tanh z) = 1 / (1 + e^(−2z)): the same value without tanh's cancellation near −1
  // (where 1 + tanh z in float would lose every digit).
  const float k = 0.7978845608028654f;  // √(2/π)
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = v / (1.0f + std::exp(-2.0f * k * (v + 0.044715f * v * v * v)));
  }
}

void geglu(const float* g, const float* u, float* y, size_t n) {
  gelu(g, y, n);
  for (size_t i = 0; i < n; ++i) y[i] *= u[i];
}

void scale(float* x, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

void softcap(float* x, float cap, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void add(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

void add_scaled(float* y, const float* x, float a, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

namespace {

enum class KvFormat { kF32, kF16, kQ8_0 };

float kv_at(const KvRows& rows, KvFormat format, size_t j, size_t d) {
  const uint8_t* row = rows.row(j);
  switch (format) {
    case KvFormat::kF16: return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[d]);
    case KvFormat::kQ8_0: {
      const auto& block = reinterpret_cast<const BlockQ8_0*>(row)[d / kQK8_0];
      return fp16_to_fp32(block.d) * float(block.qs[d % kQK8_0]);
    }
    case KvFormat::kF32: break;
  }
  return reinterpret_cast<const float*>(row)[d];
}

void attention_any(const float* q, const KvRows& k, const KvRows& v, KvFormat format,
                   size_t n_keys, size_t head_dim, float scale, float cap, float* scores,
                   float* out) {
  for (size_t j = 0; j < n_keys; ++j) {
    float dot = 0;
    for (size_t d = 0; d < head_dim; ++d) dot += q[d] * kv_at(k, format, j, d);
    scores[j] = dot * scale;
  }
  if (cap > 0) softcap(scores, cap, n_keys);  // cap 0: plain attention()
  softmax(scores, n_keys);
  for (size_t d = 0; d < head_dim; ++d) out[d] = 0;
  for (size_t j = 0; j < n_keys; ++j) {
    for (size_t d = 0; d < head_dim; ++d) out[d] += scores[j] * kv_at(v, format, j, d);
  }
}

KvFormat float_format(bool kv_is_f16) { return kv_is_f16 ? KvFormat::kF16 : KvFormat::kF32; }

}  // namespace

void attention(const float* q, const KvRows& k, const KvRows& v, bool kv_is_f16, size_t n_keys,
               size_t head_dim, float scale, float* scores, float* out) {
  attention_any(q, k, v, float_format(kv_is_f16), n_keys, head_dim, scale, 0.0f, scores, out);
}

void attention_softcapped(const float* q, const KvRows& k, const KvRows& v, bool kv_is_f16,
                          size_t n_keys, size_t head_dim, float scale, float cap,
                          float* scores, float* out) {
  attention_any(q, k, v, float_format(kv_is_f16), n_keys, head_dim, scale, cap, scores, out);
}

void attention_q8_0(const float* q, const KvRows& k, const KvRows& v, size_t n_keys,
                    size_t head_dim, float scale, float cap, float* scores, float* out) {
  attention_any(q, k, v, KvFormat::kQ8_0, n_keys, head_dim, scale, cap, scores, out);
}

}  // namespace slm::ref
