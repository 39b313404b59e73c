// AVX2 decode GEMV (KernelSet::gemv) and the matching row dots for Q4_0 and Q8_0 weights against
// Q8_0 activations: several weight rows per pass over the activation row.
//
// Formula: y[r] = sum over blocks b, lanes l of float(p[r][b][l]) * (d_w[r][b] * d_x[b]), where
// p[r][b][l] is the exact int32 sum of the 4 products w·x of block b in 32-bit lane l (the lanes
// of one vpmaddwd), accumulated per row in 8 float lanes in block order and reduced once per row
// at the end (hsum_ps). This is not the reference's order of operations (it forms each block's
// integer sum first): the result agrees with it to float rounding, 1e-6 * sum |w x| (ggml's AVX2
// dots round the same way). Dropping the per-block horizontal reduction is what makes this fast:
// it costs more than the multiplies. The scale product is formed per block from scalars: on Zen 3
// a vpgatherdd of 8 scales costs more than the 8 scalar conversions it replaces.
//
// Each row's operations do not depend on which other rows share its pass, so gemv and the single
// row dot give bit-identical results for a row, whatever the row grouping or thread count.
//
// Q4_0: the nibbles q in [0, 15] are vpmaddubsw's unsigned operand directly and the activations
// its signed one; sum((q - 8) x) per pair is maddubs(q, x) - maddubs(8, x), the second term formed
// once per activation block for all rows (pairs fit int16: 2·15·127 + 2·8·127 < 32767).
// Q8_0: |w| against x with w's signs moved onto it (vpsignb); pairs <= 2·127·127 fit int16.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/avx2_common.h"

namespace slm::isa {
namespace {

constexpr size_t kRows = 4;  // weight rows per pass

struct Q4_0Rows {
  using Block = BlockQ4_0;
  // Per activation block, shared by the rows: x and maddubs(8, x).
  struct X {
    __m256i q, eight_x;
  };
  static X load_x(const BlockQ8_0& b) {
    const __m256i q = load_256(b.qs);
    return {q, _mm256_maddubs_epi16(_mm256_set1_epi8(8), q)};
  }
  // 16 int16 pair sums of (q - 8) x. The 16 bytes go to both 128-bit halves; the high half is
  // shifted by 4 so the mask keeps the low nibbles (elements 0-15) below, the high ones above.
  static __m256i pairs(const Block& w, const X& x) {
    const __m256i both =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs)));
    const __m256i q = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)),
                                       _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi16(_mm256_maddubs_epi16(q, x.q), x.eight_x);
  }
};

struct Q8_0Rows {
  using Block = BlockQ8_0;
  struct X {
    __m256i q;
  };
  static X load_x(const BlockQ8_0& b) { return {load_256(b.qs)}; }
  static __m256i pairs(const Block& w, const X& x) {
    const __m256i q = load_256(w.qs);
    return _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x.q, q));
  }
};

// y[r] for R rows of w (w_stride bytes apart) against one Q8_0 row x.
template <typename W, size_t R>
void rows_dot(const uint8_t* w, size_t w_stride, const BlockQ8_0* x, size_t n, float* y) {
  using Block = typename W::Block;
  const Block* wr[R];
  for (size_t r = 0; r < R; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * w_stride);
  const size_t nb = n / kQK8_0;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (size_t i = 0; i < nb; ++i) {
    const typename W::X xb = W::load_x(x[i]);
    const float dx = half_to_float(x[i].d);
    for (size_t r = 0; r < R; ++r) {
      const __m256i p = _mm256_madd_epi16(W::pairs(wr[r][i], xb), ones);
      const __m256 dd = _mm256_set1_ps(half_to_float(wr[r][i].d) * dx);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), dd, acc[r]);
    }
  }
  for (size_t r = 0; r < R; ++r) y[r] = hsum_ps(acc[r]);
}

template <typename W>
void gemv(const void* w, size_t w_stride, size_t rows, const void* x_row, size_t n, float* y) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(x_row);
  size_t r = 0;
  for (; r + kRows <= rows; r += kRows)
    rows_dot<W, kRows>(wb + r * w_stride, w_stride, x, n, y + r);
  for (; r < rows; ++r) rows_dot<W, 1>(wb + r * w_stride, w_stride, x, n, y + r);
}

template <typename W>
float dot(const void* w_row, const void* x_row, size_t n) {
  float y = 0.0f;
  rows_dot<W, 1>(static_cast<const uint8_t*>(w_row), 0, static_cast<const BlockQ8_0*>(x_row), n,
                 &y);
  return y;
}

}  // namespace

void add_avx2_gemv_kernels(KernelSet& k) {
  k.vec_dot[static_cast<size_t>(DType::kQ4_0)] = dot<Q4_0Rows>;
  k.vec_dot[static_cast<size_t>(DType::kQ8_0)] = dot<Q8_0Rows>;
  k.gemv[static_cast<size_t>(DType::kQ4_0)] = gemv<Q4_0Rows>;
  k.gemv[static_cast<size_t>(DType::kQ8_0)] = gemv<Q8_0Rows>;
}

}  // namespace slm::isa
