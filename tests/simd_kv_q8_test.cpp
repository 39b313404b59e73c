// Attention over a Q8_0 KV cache (OpsSet::attention_q8_0, formula in kernels/ref/ops.h), for
// every ISA this machine can run, on random rows of odd block counts (head_dim 32, 96, 160) and
// odd key counts, plain and soft-capped. What is checked:
//   - the reference equals the float reference over the dequantized rows bit for bit (d·q is exact
//     in float, so a Q8_0 cache changes what is stored, not how attention computes);
//   - each ISA's version agrees with the reference as the float attentions do (simd_ops_test.cpp):
//     5 · (4e-6 + 1e-6 · S + 2e-7 · cap), S the largest scale · Σ|q_d k_jd|;
//   - against attention over the unquantized F32 rows, the error is within what the quantization
//     allows: an element x of a block with largest |x| = a is stored as fp16(a / 127) · q, off by
//     at most 0.5 · a/127 (rounding q) + 127 · 2^-11 · a/127 (rounding the scale to fp16) ≤ 0.57
//     a/127. So each score moves by at most E = scale · Σ_d |q_d| · 0.57 a_jd / 127, the softmax
//     weights by a factor within e^(±2E), and an output element by at most (e^(2 max E) − 1) ·
//     max_j |v_jd| + max_j 0.57 a(v)_jd / 127;
//   - rows scattered over pages give bit-identical results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quant.h"
#include "tests/kernel_test_util.h"

namespace slm {
namespace {

constexpr size_t kHeads = 3, kHead = 1;  // rows hold 3 kv heads; tests attend over the middle one

// Positions' key and value rows as floats and as Q8_0 rows (each head whole blocks).
struct KvRowsQ8 {
  size_t D, rows;
  std::vector<float> k, v;      // rows × kHeads × D
  std::vector<uint8_t> kq, vq;  // the same, quantized row by row
  size_t stride() const { return kHeads * D / kQK8_0 * sizeof(BlockQ8_0); }
  size_t offset() const { return kHead * D / kQK8_0 * sizeof(BlockQ8_0); }
};

// kind 0: scores ~1; 1: scores ~±50; 2: every key along q, growing with its position (later
// blocks of keys hold larger scores: the online softmax must rescale).
KvRowsQ8 make_rows(std::mt19937& rng, size_t rows, size_t D, int kind) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  KvRowsQ8 kv{
      D,  rows, std::vector<float>(rows * kHeads * D), std::vector<float>(rows * kHeads * D),
      {}, {}};
  for (size_t j = 0; j < rows; ++j) {
    for (size_t i = 0; i < kHeads * D; ++i) {
      const size_t at = j * kHeads * D + i;
      kv.k[at] = kind == 2 ? 0.05f * float(j) * (1.0f + 0.1f * nd(rng))
                           : (kind == 1 ? 8.0f : 1.0f) * nd(rng);
      kv.v[at] = nd(rng);
    }
  }
  kv.kq.resize(rows * kv.stride());
  kv.vq.resize(rows * kv.stride());
  for (size_t j = 0; j < rows; ++j) {
    ref::quantize_row(DType::kQ8_0, &kv.k[j * kHeads * D], &kv.kq[j * kv.stride()], kHeads * D);
    ref::quantize_row(DType::kQ8_0, &kv.v[j * kHeads * D], &kv.vq[j * kv.stride()], kHeads * D);
  }
  return kv;
}

std::vector<float> dequantized(const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> x(n);
  ref::dequantize_row(DType::kQ8_0, q.data(), x.data(), n);
  return x;
}

class SimdKvQ8 : public testing::TestWithParam<Isa> {
 protected:
  const OpsSet& ops() const { return kernel_set(GetParam()).ops; }
  std::mt19937 rng_{4321};
  std::vector<float> random(size_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng_);
    return x;
  }
};

TEST(KvQ8Reference, EqualsFloatAttentionOnDequantizedRowsBitForBit) {
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (size_t D : {32, 96}) {
    for (size_t n_keys : {1, 7, 65}) {
      for (float cap : {0.0f, 4.0f}) {
        const KvRowsQ8 kv = make_rows(rng, n_keys, D, 1);
        const std::vector<float> kf = dequantized(kv.kq, n_keys * kHeads * D);
        const std::vector<float> vf = dequantized(kv.vq, n_keys * kHeads * D);
        std::vector<float> q(D);
        for (float& x : q) x = nd(rng);
        const uint8_t *kq = kv.kq.data(), *vq = kv.vq.data();
        const auto* kb = reinterpret_cast<const uint8_t*>(kf.data());
        const auto* vb = reinterpret_cast<const uint8_t*>(vf.data());
        const size_t f_stride = kHeads * D * sizeof(float), f_offset = kHead * D * sizeof(float);
        std::vector<float> scores(n_keys), got(D), want(D);
        ref::attention_q8_0(q.data(), {&kq, n_keys, kv.stride(), kv.offset(), 0},
                            {&vq, n_keys, kv.stride(), kv.offset(), 0}, n_keys, D, 0.1f, cap,
                            scores.data(), got.data());
        const ref::KvRows k{&kb, n_keys, f_stride, f_offset, 0},
            v{&vb, n_keys, f_stride, f_offset, 0};
        if (cap > 0) {
          ref::attention_softcapped(q.data(), k, v, false, n_keys, D, 0.1f, cap, scores.data(),
                                    want.data());
        } else {
          ref::attention(q.data(), k, v, false, n_keys, D, 0.1f, scores.data(), want.data());
        }
        ASSERT_EQ(std::memcmp(got.data(), want.data(), D * sizeof(float)), 0)
            << "D " << D << " keys " << n_keys << " cap " << cap;
      }
    }
  }
}

TEST_P(SimdKvQ8, MatchesReference) {
  for (size_t D : {32, 96, 160}) {
    for (size_t n_keys : {1, 5, 63, 64, 65, 200, 1001}) {
      for (int kind = 0; kind < 3; ++kind) {
        for (float cap : {0.0f, 4.0f, 50.0f}) {
          if (n_keys > 1000 && D > 32) continue;  // long rows once: qemu runs this test too
          const KvRowsQ8 kv = make_rows(rng_, n_keys, D, kind);
          const uint8_t *kq = kv.kq.data(), *vq = kv.vq.data();
          const ref::KvRows k{&kq, n_keys, kv.stride(), kv.offset(), 0};
          const ref::KvRows v{&vq, n_keys, kv.stride(), kv.offset(), 0};
          const std::vector<float> q = kind == 2 ? std::vector<float>(D, 1.0f) : random(D);
          const float scale = 1.0f / std::sqrt(float(D));
          std::vector<float> scores(n_keys), got(D + 1, -7.0f), want(D);
          ops().attention_q8_0(q.data(), k, v, n_keys, D, scale, cap, scores.data(), got.data());
          ref::attention_q8_0(q.data(), k, v, n_keys, D, scale, cap, scores.data(), want.data());
          const std::vector<float> kf = dequantized(kv.kq, n_keys * kHeads * D);
          double S = 0;
          for (size_t j = 0; j < n_keys; ++j) {
            double s = 0;
            for (size_t d = 0; d < D; ++d)
              s += std::fabs(double(q[d]) * kf[(j * kHeads + kHead) * D + d]);
            S = std::max(S, s * scale);
          }
          const double tol = 5.0 * (4e-6 + 1e-6 * S + 2e-7 * cap);
          for (size_t d = 0; d < D; ++d) {
            ASSERT_NEAR(got[d], want[d], tol)
                << "D " << D << " keys " << n_keys << " kind " << kind << " cap " << cap;
          }
          EXPECT_EQ(got[D], -7.0f);
        }
      }
    }
  }
}

TEST_P(SimdKvQ8, WithinTheQuantizationBoundOfF32) {
  for (size_t D : {32, 96}) {
    for (size_t n_keys : {1, 9, 100}) {
      const KvRowsQ8 kv = make_rows(rng_, n_keys, D, 0);
      const uint8_t *kq = kv.kq.data(), *vq = kv.vq.data();
      const auto* kb = reinterpret_cast<const uint8_t*>(kv.k.data());
      const auto* vb = reinterpret_cast<const uint8_t*>(kv.v.data());
      const size_t f_stride = kHeads * D * sizeof(float), f_offset = kHead * D * sizeof(float);
      const std::vector<float> q = random(D);
      const float scale = 1.0f / std::sqrt(float(D));
      std::vector<float> scores(n_keys), got(D), exact(D);
      ops().attention_q8_0(q.data(), {&kq, n_keys, kv.stride(), kv.offset(), 0},
                           {&vq, n_keys, kv.stride(), kv.offset(), 0}, n_keys, D, scale, 0.0f,
                           scores.data(), got.data());
      ref::attention(q.data(), {&kb, n_keys, f_stride, f_offset, 0},
                     {&vb, n_keys, f_stride, f_offset, 0}, false, n_keys, D, scale, scores.data(),
                     exact.data());
      // The largest |x| of the block holding element d of row j's head.
      const auto block_max = [&](const std::vector<float>& x, size_t j, size_t d) {
        const float* b = &x[(j * kHeads + kHead) * D + d / kQK8_0 * kQK8_0];
        float m = 0;
        for (size_t i = 0; i < kQK8_0; ++i) m = std::max(m, std::fabs(b[i]));
        return double(m);
      };
      double E = 0;
      for (size_t j = 0; j < n_keys; ++j) {
        double e = 0;
        for (size_t d = 0; d < D; ++d) e += std::fabs(q[d]) * 0.57 * block_max(kv.k, j, d) / 127;
        E = std::max(E, e * scale);
      }
      for (size_t d = 0; d < D; ++d) {
        double v_max = 0, dv_max = 0;
        for (size_t j = 0; j < n_keys; ++j) {
          v_max = std::max(v_max, double(std::fabs(kv.v[(j * kHeads + kHead) * D + d])));
          dv_max = std::max(dv_max, 0.57 * block_max(kv.v, j, d) / 127);
        }
        const double bound = std::expm1(2 * E) * v_max + dv_max + 1e-5;
        ASSERT_LE(std::fabs(got[d] - exact[d]), bound) << "D " << D << " keys " << n_keys;
      }
    }
  }
}

// Shuffled pages of 16 positions, keys starting mid-page: the same bits as one contiguous page.
TEST_P(SimdKvQ8, OverPagesEqualsContiguous) {
  const size_t D = 64, page_rows = 16, first = 5;
  for (size_t n_keys : {1, 11, 64, 100, 300}) {
    const size_t total = first + n_keys;
    const KvRowsQ8 kv = make_rows(rng_, total, D, 0);
    const test::ShuffledPages k_pages(kv.kq.data(), total, kv.stride(), page_rows, rng_);
    const test::ShuffledPages v_pages(kv.vq.data(), total, kv.stride(), page_rows, rng_);
    const uint8_t *k_one = kv.kq.data(), *v_one = kv.vq.data();
    const ref::KvRows k_flat{&k_one, total, kv.stride(), kv.offset(), first};
    const ref::KvRows v_flat{&v_one, total, kv.stride(), kv.offset(), first};
    const ref::KvRows k_paged = k_pages.view(kv.offset(), first);
    const ref::KvRows v_paged = v_pages.view(kv.offset(), first);
    const std::vector<float> q = random(D);
    std::vector<float> scores(n_keys), flat(D), paged(D);
    for (const auto attention : {ops().attention_q8_0, &ref::attention_q8_0}) {
      attention(q.data(), k_flat, v_flat, n_keys, D, 0.125f, 0.0f, scores.data(), flat.data());
      attention(q.data(), k_paged, v_paged, n_keys, D, 0.125f, 0.0f, scores.data(), paged.data());
      ASSERT_EQ(std::memcmp(flat.data(), paged.data(), D * sizeof(float)), 0) << "keys " << n_keys;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SimdKvQ8, testing::ValuesIn(available_isas()), test::isa_label);

}  // namespace
}  // namespace slm
