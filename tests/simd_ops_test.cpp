// Every ISA's forward-pass ops (KernelSet::ops) against the scalar references in kernels/ref/ops,
// for every ISA this machine can run (scalar included: a check of the defaults), on random data
// of odd sizes. Bounds, as the SIMD files state them:
//   - rope, add: bit-identical;
//   - rms_norm: the same double sum in another order: within 1e-6 relative (in practice exact);
//   - exp-based ops use an approximation with max relative error ≈ 3e-7; swiglu and gelu are
//     checked against the exact value (long double) to 1e-6 relative (gelu: plus the error any
//     float evaluation of its exponent has, see below), softmax against the
//     reference to 1e-6 relative, attention against the reference to 4e-6 · max|v| (its output
//     is a convex combination of the value rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quant.h"
#include "tests/kernel_test_util.h"

namespace slm {


namespace {

constexpr size_t kSizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257, 2049};

class SimdOps : public testing::TestWithParam<Isa> {
 protected:
  const OpsSet& ops() const { return kernel_set(GetParam()).ops; }
  std::mt19937 rng_{1234};
  std::vector<float> random(size_t n, float sd) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng_);
    return x;
  }
};

std::string sci(double v) {
  std::ostringstream os;
  os << std::scientific << std::setprecision(2) << v;
  return os.str();
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_P(SimdOps, RmsNorm) {
  for (size_t n : kSizes) {
    const auto x = random(n, 3.0f), w = random(n, 1.0f);
    for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
      std::vector<float> got(n + 1, -7.0f), want(n);
      ops().rms_norm(x.data(), wp, 1e-5f, got.data(), n);
      ref::rms_norm(x.data(), wp, 1e-5f, want.data(), n);
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i])) << n;
      EXPECT_EQ(got[n], -7.0f) << "wrote past the end, n=" << n;
    }
  }
}

// LayerNorm against the formula in long double.
TEST_P(SimdOps, LayerNorm) {
  for (size_t n : kSizes) {
    const auto x = random(n, 3.0f), w = random(n, 1.0f), b = random(n, 1.0f);
    long double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= n;
    for (float v : x) var += (v - mean) * (v - mean);
    var /= n;
    std::vector<float> got(n + 1, -7.0f);
    ops().layer_norm(x.data(), w.data(), b.data(), 1e-5f, got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const long double want = (x[i] - mean) / std::sqrt(var + 1e-5L) * w[i] + b[i];
      ASSERT_NEAR(got[i], double(want), 2e-6 * (1 + std::fabs(double(want)))) << n;
    }
    EXPECT_EQ(got[n], -7.0f) << "wrote past the end, n=" << n;
    ops().layer_norm(x.data(), nullptr, nullptr, 1e-5f, got.data(), n);  // no weight, no bias
    const long double want0 = (x[0] - mean) / std::sqrt(var + 1e-5L);
    EXPECT_NEAR(got[0], double(want0), 2e-6 * (1 + std::fabs(double(want0))));
  }
}

TEST_P(SimdOps, RopeBothLayoutsBitIdentical) {
  for (size_t n_rot : {2, 6, 8, 14, 16, 18, 30, 32, 34, 64, 80, 128}) {
    const size_t head_dim = n_rot + 6;  // dims past n_rot stay as they are
    std::vector<float> cs(n_rot);
    ref::rope_table(37, n_rot, 10000.0f, cs.data());
    const auto head = random(head_dim, 1.0f);
    for (bool interleaved : {true, false}) {
      auto got = head, want = head;
      (interleaved ? ops().rope_interleaved : ops().rope_half_split)(got.data(), cs.data(), n_rot);
      (interleaved ? ref::rope_interleaved : ref::rope_half_split)(want.data(), cs.data(), n_rot);
      EXPECT_TRUE(bits_equal(got, want)) << "n_rot " << n_rot << " interleaved " << interleaved;
    }
  }
}

TEST_P(SimdOps, AddBitIdentical) {
  for (size_t n : kSizes) {
    const auto x = random(n, 1.0f), y = random(n, 1.0f);
    auto got = y, want = y;
    ops().add(got.data(), x.data(), n);
    ref::add(want.data(), x.data(), n);
    EXPECT_TRUE(bits_equal(got, want)) << n;
  }
}

TEST_P(SimdOps, Softmax) {
  for (size_t n : kSizes) {
    for (float sd : {1.0f, 30.0f}) {  // 30: most terms underflow to (nearly) 0
      const auto x = random(n, sd);
      auto got = x, want = x;
      got.push_back(-7.0f);
      ops().softmax(got.data(), n);
      ref::softmax(want.data(), n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6 * want[i] + 1e-37) << "n " << n << " i " << i;
      }
      EXPECT_EQ(got[n], -7.0f);
    }
  }
}

// Max relative error against the exact value over random inputs and a sweep of [-100, 100]
// (through exp's clamped range on both sides).
template <class Op, class Exact>
double max_rel_error(Op op, Exact exact, const std::vector<float>& x, const std::vector<float>& u) {
  std::vector<float> y(x.size());
  op(x.data(), u.data(), y.data(), x.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double e = exact(x[i], u[i]);
    if (std::fabs(double(e)) < 1e-30) {  // underflow region: only the absolute error matters
      EXPECT_LE(std::fabs(double(y[i] - e)), 1e-30) << x[i];
      continue;
    }
    worst = std::max(worst, double(std::fabs((y[i] - e) / e)));
  }
  return worst;
}

std::vector<float> sweep(float lo, float hi, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * float(i) / float(n - 1);
  return x;
}

// Soft-capping (Gemma 2's logits and attention scores) against cap · tanh(x / cap) in long
// double: absolute error within 2e-7 · cap (tanh through exp), at caps below and above the
// values, over random values and a sweep through both saturated ends.
TEST_P(SimdOps, SoftcapWithinStatedError) {
  double worst = 0;  // |error| / cap
  for (float cap : {4.0f, 30.0f, 50.0f}) {
    std::vector<std::vector<float>> inputs;
    for (size_t n : kSizes) inputs.push_back(random(n, 30.0f));
    inputs.push_back(sweep(-400, 400, 40001));
    for (const auto& x : inputs) {
      auto got = x;
      got.push_back(-7.0f);
      ops().softcap(got.data(), cap, x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const long double want = cap * std::tanh((long double)x[i] / cap);
        worst = std::max(worst, double(std::fabs(got[i] - want)) / cap);
      }
      EXPECT_EQ(got[x.size()], -7.0f) << "wrote past the end";
    }
  }
  EXPECT_LE(worst, 2e-7);
  RecordProperty("max_abs_error_over_cap", sci(worst));
}

TEST_P(SimdOps, SwigluWithinStatedError) {
  const auto silu_u = [](float g, float u) { return (long double)g / (1 + std::exp(-(long double)g)) * u; };
  const auto op = ops().swiglu;
  double worst = 0;
  for (size_t n : kSizes) {
    worst = std::max(worst, max_rel_error(op, silu_u, random(n, 4.0f), random(n, 1.0f)));
  }
  const auto x = sweep(-100, 100, 20001);
  worst = std::max(worst, max_rel_error(op, silu_u, x, std::vector<float>(x.size(), 1.0f)));
  EXPECT_LE(worst, 1e-6);
  RecordProperty("max_rel_error", sci(worst));
}

// GELU's exponent 2z is itself computed in float (≈ 5 roundings), so where |2z| is large the
// function is ill-conditioned in float: any float evaluation, the reference's included, is off by
// up to ≈ 3e-7·|2z| relative. The bound is 1e-6 on top of that.
TEST_P(SimdOps, GeluWithinStatedError) {
  const auto two_z = [](float x) {
    const long double v = x;
    return 2 * 0.7978845608028654L * (v + 0.044715L * v * v * v);
  };
  const auto exact = [&](float x) { return (long double)x / (1 + std::exp(-two_z(x))); };
  const auto tol = [&](float x, long double e) {
    return (1e-6 + 3e-7 * std::fabs(double(two_z(x)))) * std::fabs(double(e)) + 1e-30;
  };
  std::vector<std::vector<float>> inputs = {sweep(-12, 40, 20001)};
  for (size_t n : kSizes) inputs.push_back(random(n, 3.0f));
  double worst = 0;  // |error| / |exact| / (1 + 0.3 |2z|)
  for (const auto& x : inputs) {
    std::vector<float> got(x.size()), want(x.size());
    ops().gelu(x.data(), got.data(), x.size());
    ref::gelu(x.data(), want.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const long double e = exact(x[i]);
      ASSERT_LE(std::fabs(double(got[i] - e)), tol(x[i], e)) << "x = " << x[i];
      ASSERT_LE(std::fabs(double(got[i] - want[i])), 2 * tol(x[i], e)) << "x = " << x[i];
      if (std::fabs(double(e)) > 1e-30) {
        worst = std::max(worst, double(std::fabs((got[i] - e) / e)) /
                                    (1 + 0.3 * std::fabs(double(two_z(x[i])))));
      }
    }
  }
  RecordProperty("max_scaled_rel_error", sci(worst));
}

// GeGLU is gelu(g) · u: twice the gelu bound above (ours and the reference's), plus one rounding.
TEST_P(SimdOps, GegluMatchesGeluTimesUp) {
  for (size_t n : kSizes) {
    const std::vector<float> g = random(n, 3.0f), u = random(n, 1.0f);
    std::vector<float> got(n), gelu(n);
    ops().geglu(g.data(), u.data(), got.data(), n);
    ref::gelu(g.data(), gelu.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const double want = double(gelu[i]) * u[i], v = g[i];
      const double two_z = 2 * 0.7978845608028654 * (v + 0.044715 * v * v * v);
      const double tol = (3e-6 + 6e-7 * std::fabs(two_z)) * std::fabs(want) + 1e-30;
      ASSERT_LE(std::fabs(got[i] - want), tol) << "n = " << n << ", i = " << i;
    }
  }
}

// Keys/values of `rows` positions, each row holding `heads` heads of head_dim (the cache layout),
// in f32 or f16; the test attends over head `g`.
struct KvData {
  std::vector<uint8_t> k, v;
  size_t stride;
};

KvData make_kv(std::mt19937& rng, size_t rows, size_t heads, size_t D, bool f16, float k_sd,
               bool increasing) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t elem = f16 ? 2 : 4;
  KvData kv{std::vector<uint8_t>(rows * heads * D * elem), std::vector<uint8_t>(rows * heads * D * elem),
            heads * D * elem};
  std::vector<float> kr(heads * D), vr(heads * D);
  for (size_t j = 0; j < rows; ++j) {
    for (size_t i = 0; i < heads * D; ++i) {
      // increasing: every key the all-ones direction, growing with j, so later blocks hold larger
      // scores and the online softmax must rescale what it has.
      kr[i] = increasing ? 0.05f * float(j) : k_sd * nd(rng);
      vr[i] = nd(rng);
    }
    if (f16) {
      ref::quantize_row(DType::kF16, kr.data(), &kv.k[j * kv.stride], heads * D);
      ref::quantize_row(DType::kF16, vr.data(), &kv.v[j * kv.stride], heads * D);
    } else {
      std::memcpy(&kv.k[j * kv.stride], kr.data(), kv.stride);
      std::memcpy(&kv.v[j * kv.stride], vr.data(), kv.stride);
    }
  }
  return kv;
}

// Gemma 2's soft-capped scores: the reference's error bound above plus the tanh's ≈ 2e-7 · cap
// (scores ~±50 are squashed into ±cap, so caps below and above them).
TEST_P(SimdOps, AttentionSoftcappedMatchesReference) {
  for (bool f16 : {false, true}) {
    for (size_t D : {8, 17, 64}) {
      for (size_t n_keys : {1, 5, 63, 64, 65, 200}) {
        for (float cap : {4.0f, 50.0f}) {
          const size_t heads = 3, g = 1, elem = f16 ? 2 : 4;
          const KvData kv = make_kv(rng_, n_keys, heads, D, f16, 8.0f, false);
          const auto q = random(D, 1.0f);
          const float scale = 1.0f / std::sqrt(float(D));
          std::vector<float> scores(n_keys), got(D + 1, -7.0f), want(D), plain(D);
          const uint8_t* k_page = kv.k.data();
          const uint8_t* v_page = kv.v.data();
          const ref::KvRows k{&k_page, n_keys, kv.stride, g * D * elem, 0};
          const ref::KvRows v{&v_page, n_keys, kv.stride, g * D * elem, 0};
          ops().attention_softcapped(q.data(), k, v, f16, n_keys, D, scale, cap,
                                     scores.data(), got.data());
          ref::attention_softcapped(q.data(), k, v, f16, n_keys, D, scale, cap,
                                    scores.data(), want.data());
          const double tol = 5.0 * (4e-6 + 1e-6 * 8.0 * 8.0 * std::sqrt(double(D)) + 2e-7 * cap);
          for (size_t d = 0; d < D; ++d) {
            ASSERT_NEAR(got[d], want[d], tol)
                << "f16 " << f16 << " D " << D << " keys " << n_keys << " cap " << cap;
          }
          EXPECT_EQ(got[D], -7.0f);
          // A cap of 4 on scores ~±50 changes the result (the test would catch a missing cap).
          ref::attention(q.data(), k, v, f16, n_keys, D, scale, scores.data(),
                         plain.data());
          if (cap == 4.0f && n_keys >= 63) {
            double diff = 0;
            for (size_t d = 0; d < D; ++d)
              diff = std::max(diff, double(std::fabs(plain[d] - want[d])));
            EXPECT_GT(diff, 1e-2) << "D " << D << " keys " << n_keys;
          }
        }
      }
    }
  }
}

TEST_P(SimdOps, AttentionOnlineSoftmaxMatchesReference) {
  for (bool f16 : {false, true}) {
    for (size_t D : {8, 17, 40, 64, 80, 128}) {
      for (size_t n_keys : {1, 5, 63, 64, 65, 200, 1000}) {
        for (int kind = 0; kind < 3; ++kind) {  // scores ~1, scores ~±50, increasing scores
          const size_t heads = 3, g = 1, elem = f16 ? 2 : 4;
          const KvData kv = make_kv(rng_, n_keys, heads, D, f16, kind == 1 ? 8.0f : 1.0f, kind == 2);
          const uint8_t* k_page = kv.k.data();
          const uint8_t* v_page = kv.v.data();
          const ref::KvRows k_rows{&k_page, n_keys, kv.stride, g * D * elem, 0};
          const ref::KvRows v_rows{&v_page, n_keys, kv.stride, g * D * elem, 0};
          const auto q = kind == 2 ? std::vector<float>(D, 1.0f) : random(D, 1.0f);
          const float scale = 1.0f / std::sqrt(float(D));
          std::vector<float> scores(n_keys), got(D + 1, -7.0f), want(D);
          ops().attention(q.data(), k_rows, v_rows, f16, n_keys, D, scale, scores.data(),
                          got.data());
          ref::attention(q.data(), k_rows, v_rows, f16, n_keys, D, scale, scores.data(),
                         want.data());
          // The output is a convex combination of value rows (|v| ≤ ~5 here). Its error: exp's
          // 3e-7 and the float rounding of each score, which is summed in another order
          // (≤ ~1e-6 of S = max_j scale · Σ_d |q_d k_jd|).
          double S = 0;
          for (size_t j = 0; j < n_keys; ++j) {
            double s = 0;
            for (size_t d = 0; d < D; ++d) {
              const uint8_t* row = &kv.k[j * kv.stride + (g * D + d) * elem];
              float kd;
              if (f16) {
                uint16_t h;
                std::memcpy(&h, row, 2);
                kd = fp16_to_fp32(h);
              } else {
                std::memcpy(&kd, row, 4);
              }
              s += std::fabs(double(q[d]) * kd);
            }
            S = std::max(S, s * scale);
          }
          const double tol = 5.0 * (4e-6 + 1e-6 * S);
          for (size_t d = 0; d < D; ++d) {
            ASSERT_NEAR(got[d], want[d], tol)
                << "f16 " << f16 << " D " << D << " keys " << n_keys << " kind " << kind;
          }
          EXPECT_EQ(got[D], -7.0f);
        }
      }
    }
  }
}



// The same rows scattered over pages of 16 positions (pages in shuffled order, keys starting
// mid-page) give bit-identical results: paging changes where rows are, not what is computed.
TEST_P(SimdOps, AttentionOverPagesEqualsContiguous) {
  const size_t D = 64, heads = 2, g = 1, page_rows = 16, first = 5;
  for (bool f16 : {false, true}) {
    for (size_t n_keys : {1, 11, 64, 100, 300}) {
      const size_t elem = f16 ? 2 : 4, total = first + n_keys;
      const KvData kv = make_kv(rng_, total, heads, D, f16, 1.0f, false);
      const test::ShuffledPages k_pages(kv.k.data(), total, kv.stride, page_rows, rng_);
      const test::ShuffledPages v_pages(kv.v.data(), total, kv.stride, page_rows, rng_);
      const uint8_t* k_one = kv.k.data();
      const uint8_t* v_one = kv.v.data();
      const ref::KvRows k_flat{&k_one, total, kv.stride, g * D * elem, first};
      const ref::KvRows v_flat{&v_one, total, kv.stride, g * D * elem, first};
      const ref::KvRows k_paged = k_pages.view(g * D * elem, first);
      const ref::KvRows v_paged = v_pages.view(g * D * elem, first);
      const auto q = random(D, 1.0f);
      std::vector<float> scores(n_keys), flat(D), paged(D);
      for (const auto attention : {ops().attention, &ref::attention}) {
        attention(q.data(), k_flat, v_flat, f16, n_keys, D, 0.125f, scores.data(), flat.data());
        attention(q.data(), k_paged, v_paged, f16, n_keys, D, 0.125f, scores.data(), paged.data());
        ASSERT_EQ(std::memcmp(flat.data(), paged.data(), D * sizeof(float)), 0)
            << "f16 " << f16 << " keys " << n_keys;
      }
    }
  }
}

// Query heads that share a kv head, in one attention_heads call, get bit for bit what each gets
// from attention() alone (odd counts and head sizes, several blocks of keys, rows over pages).
TEST_P(SimdOps, AttentionHeadsEqualsOneHeadAtATime) {
  if (ops().attention_heads == nullptr)
    GTEST_SKIP() << isa_name(GetParam()) << " has no attention_heads";
  const size_t kv_heads = 2, g = 1, page_rows = 16, first = 3;
  for (bool f16 : {false, true}) {
    for (size_t D : {17, 64, 80}) {
      for (size_t n_keys : {1, 7, 64, 130}) {
        for (size_t n_heads : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{16}}) {
          const size_t elem = f16 ? 2 : 4, total = first + n_keys;
          const KvData kv = make_kv(rng_, total, kv_heads, D, f16, 2.0f, false);
          const test::ShuffledPages k_pages(kv.k.data(), total, kv.stride, page_rows, rng_);
          const test::ShuffledPages v_pages(kv.v.data(), total, kv.stride, page_rows, rng_);
          const ref::KvRows k = k_pages.view(g * D * elem, first);
          const ref::KvRows v = v_pages.view(g * D * elem, first);
          const auto q = random(n_heads * D, 1.0f);
          std::vector<float> scores(n_keys), alone(n_heads * D), together(n_heads * D + 1, -7.0f);
          for (size_t h = 0; h < n_heads; ++h) {
            ops().attention(&q[h * D], k, v, f16, n_keys, D, 0.125f, scores.data(), &alone[h * D]);
          }
          ops().attention_heads(q.data(), n_heads, k, v, f16, n_keys, D, 0.125f, together.data());
          ASSERT_EQ(std::memcmp(alone.data(), together.data(), n_heads * D * sizeof(float)), 0)
              << "f16 " << f16 << " D " << D << " keys " << n_keys << " heads " << n_heads;
          EXPECT_EQ(together[n_heads * D], -7.0f);
        }
      }
    }
  }
}

// A prompt's tokens in one attention_causal call get bit for bit what each gets from attention()
// (or, soft-capped, attention_softcapped()) with its own key count: head sizes the SIMD versions
// convert or transpose and wider ones (Gemma's 256) they read in place, keys starting mid-block,
// blocks that some tokens see only in part, rows over pages.
TEST_P(SimdOps, AttentionCausalEqualsOneTokenAtATime) {
  if (ops().attention_causal == nullptr)
    GTEST_SKIP() << isa_name(GetParam()) << " has no attention_causal";
  const size_t kv_heads = 2, g = 1, page_rows = 16, first = 3;
  for (bool f16 : {false, true}) {
    for (size_t D : {17, 64, 80, 128, 136, 256}) {
      for (size_t n_keys0 : {1, 7, 64, 100}) {
        for (size_t n_tokens : {1, 3, 70}) {
          for (size_t n_heads : {size_t{1}, size_t{3}, size_t{5}}) {
            const float cap = n_heads == 3 ? 0.5f : 0.0f;  // scores reach about ±2
            const size_t elem = f16 ? 2 : 4, total = first + n_keys0 + n_tokens - 1;
            const KvData kv = make_kv(rng_, total, kv_heads, D, f16, 2.0f, false);
            const test::ShuffledPages k_pages(kv.k.data(), total, kv.stride, page_rows, rng_);
            const test::ShuffledPages v_pages(kv.v.data(), total, kv.stride, page_rows, rng_);
            const ref::KvRows k = k_pages.view(g * D * elem, first);
            const ref::KvRows v = v_pages.view(g * D * elem, first);
            // Token t's heads one after another, tokens q_stride apart (more than the heads).
            const size_t q_stride = (n_heads + 1) * D, rows = n_tokens * q_stride;
            const auto q = random(rows, 1.0f);
            std::vector<float> scores(total), alone(rows, -7.0f), together(rows, -7.0f);
            for (size_t t = 0; t < n_tokens; ++t) {
              for (size_t h = 0; h < n_heads; ++h) {
                const size_t at = t * q_stride + h * D;
                if (cap > 0) {
                  ops().attention_softcapped(&q[at], k, v, f16, n_keys0 + t, D, 0.125f, cap,
                                             scores.data(), &alone[at]);
                } else {
                  ops().attention(&q[at], k, v, f16, n_keys0 + t, D, 0.125f, scores.data(),
                                  &alone[at]);
                }
              }
            }
            ops().attention_causal(q.data(), q_stride, n_heads, n_tokens, n_keys0, k, v, f16, D,
                                   0.125f, cap, together.data(), q_stride);
            ASSERT_TRUE(bits_equal(alone, together))  // the gaps between tokens untouched too
                << "f16 " << f16 << " D " << D << " keys " << n_keys0 << " tokens " << n_tokens
                << " heads " << n_heads << " cap " << cap;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SimdOps, testing::ValuesIn(available_isas()), test::isa_label);

}  // namespace
}  // namespace slm
