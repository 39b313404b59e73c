// AVX2 Q4_K weights repacked at load (KernelSet::repacked, TileRepacking) so that decode reads
// each super-block of 8 rows as one column in which every vector lane belongs to one row.
//
// The row dot (avx2_kquant.cpp) spends most of its time per super-block outside the multiplies:
// decoding the 6-bit scales and mins, broadcasting each group's scale, and reducing each
// super-block's int32 lanes horizontally. Here 32-bit lane r of every vector holds 4 quants of
// row r, so 4 activation bytes broadcast to all lanes multiply the 8 rows at once and the sums
// of a row build up in its lane with no horizontal step; the scales arrive decoded for 8 rows in
// a few vector operations.
//
// A column (super-block b of the tile's 8 rows; the same 8 * 144 bytes):
//   d[8], dmin[8]   the rows' fp16 scales, lane r for row r
//   low[64]         entry g * 8 + r: the low nibbles of group g's scale and min for row r
//   high[32]        entry e's top 2 bits of scale and min (scale >> 4 | (min >> 4) << 2) in the
//                   low nibble of byte e (e < 32) or the high nibble of byte e - 32
//   qs[8][4][32]    group g, vector k, bytes 4r..4r+3: elements 32g + 8k + i (low nibbles) and
//                   32g + 8k + 4 + i (high nibbles), i = 0..3, of row r
//
// Every element is bit-identical to the row dot of the original row: the same exact integer
// sums per super-block (isum = sum_g sc_g sum q x, msum = sum_g m_g (bsum_2g + bsum_2g+1)), the
// same float operations for its term, the term in the accumulator of lane b mod 8 of the dot (one
// accumulator per token and that lane; the dot's partial last batch adds +0 to the others, which
// changes nothing), and the dot's hsum_ps done vertically in its order, as tile_with_q8_k does.
// No FMA (-ffp-contract=off).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_common.h"

namespace slm::isa {
namespace {

constexpr size_t kR = kTileRows;
static_assert(kR == 8, "the rows of a tile fill the 8 lanes of a vector");
constexpr size_t kGroups = kQK_K / 32;

struct Q4KColumn {
  uint16_t d[kR], dmin[kR];
  uint8_t low[kGroups * kR];
  uint8_t high[kGroups * kR / 2];
  uint8_t qs[kGroups][4][32];
};
static_assert(sizeof(Q4KColumn) == kR * sizeof(BlockQ4_K), "repacking keeps the size");

// The 256 quants (0..15) of a block in element order.
void block_quants(const BlockQ4_K& b, uint8_t* q) {
  for (size_t h = 0; h < 4; ++h) {
    for (size_t l = 0; l < 32; ++l) {
      q[64 * h + l] = b.qs[32 * h + l] & 0x0F;
      q[64 * h + 32 + l] = b.qs[32 * h + l] >> 4;
    }
  }
}

void repack_q4_k(const void* rows, size_t n, void* dst) {
  const size_t nb = n / kQK_K;
  const auto* w = static_cast<const BlockQ4_K*>(rows);
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < nb; ++b, out += sizeof(Q4KColumn)) {
    Q4KColumn c{};
    for (size_t r = 0; r < kR; ++r) {
      const BlockQ4_K& block = w[r * nb + b];
      c.d[r] = block.d;
      c.dmin[r] = block.dmin;
      uint8_t q[kQK_K];
      block_quants(block, q);
      for (size_t g = 0; g < kGroups; ++g) {
        uint8_t sc, m;
        k4_scale_min(int(g), block.scales, &sc, &m);
        const size_t e = g * kR + r;
        c.low[e] = static_cast<uint8_t>((sc & 0x0F) | ((m & 0x0F) << 4));
        const auto top = static_cast<uint8_t>((sc >> 4) | ((m >> 4) << 2));
        c.high[e % 32] |= static_cast<uint8_t>(e < 32 ? top : top << 4);
        for (size_t k = 0; k < 4; ++k) {
          for (size_t i = 0; i < 4; ++i) {
            const uint8_t* at = q + 32 * g + 8 * k + i;
            c.qs[g][k][4 * r + i] = static_cast<uint8_t>(at[0] | (at[4] << 4));
          }
        }
      }
    }
    std::memcpy(out, &c, sizeof(c));
  }
}

// Row r of a repacked run, dequantized: its blocks rebuilt, then the reference's dequantize.
void dequantize_repacked_q4_k(const void* run, size_t r, size_t n, float* y) {
  const auto* columns = static_cast<const uint8_t*>(run);
  for (size_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    Q4KColumn c;
    std::memcpy(&c, columns + b * sizeof(Q4KColumn), sizeof(c));
    BlockQ4_K block;
    block.d = c.d[r];
    block.dmin = c.dmin[r];
    uint8_t ls[kGroups], lm[kGroups], q[kQK_K];
    for (size_t g = 0; g < kGroups; ++g) {
      const size_t e = g * kR + r;
      const int top = e < 32 ? c.high[e] & 0x0F : c.high[e - 32] >> 4;
      ls[g] = static_cast<uint8_t>((c.low[e] & 0x0F) | ((top & 3) << 4));
      lm[g] = static_cast<uint8_t>((c.low[e] >> 4) | ((top >> 2) << 4));
      for (size_t k = 0; k < 4; ++k) {
        for (size_t i = 0; i < 4; ++i) {
          const uint8_t byte = c.qs[g][k][4 * r + i];
          q[32 * g + 8 * k + i] = byte & 0x0F;
          q[32 * g + 8 * k + 4 + i] = byte >> 4;
        }
      }
    }
    pack_k4_scales(ls, lm, block.scales);
    for (size_t h = 0; h < 4; ++h) {
      for (size_t l = 0; l < 32; ++l) {
        block.qs[32 * h + l] = static_cast<uint8_t>(q[64 * h + l] | (q[64 * h + 32 + l] << 4));
      }
    }
    ref::dequantize_row(DType::kQ4_K, &block, y, kQK_K);
  }
}

// A column's scales and mins as vpmaddwd multipliers, lane r for row r: scale[g] holds group g's
// scale as an int16 pair, min[k] the mins of groups 2k and 2k + 1 (to pair with their bsums).
struct ColumnScales {
  __m256i scale[kGroups], min[kGroups / 2];

  explicit ColumnScales(const Q4KColumn& c) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i high = load_256(c.high);
    const __m256i tops[2] = {_mm256_and_si256(high, m4),
                             _mm256_and_si256(_mm256_srli_epi16(high, 4), m4)};
    for (size_t half = 0; half < 2; ++half) {  // groups 0-3, then 4-7
      const __m256i low = load_256(c.low + 32 * half);
      const __m256i sc = _mm256_or_si256(_mm256_and_si256(low, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(tops[half], m2), 4));
      const __m256i mn = _mm256_or_si256(
          _mm256_and_si256(_mm256_srli_epi16(low, 4), m4),
          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(tops[half], 2), m2), 4));
      // Bytes 8j..8j+7 of sc / mn: group 4 * half + j's 8 rows.
      const __m128i sc_q[4] = {
          _mm256_castsi256_si128(sc), _mm_srli_si128(_mm256_castsi256_si128(sc), 8),
          _mm256_extracti128_si256(sc, 1), _mm_srli_si128(_mm256_extracti128_si256(sc, 1), 8)};
      const __m128i mn_q[4] = {
          _mm256_castsi256_si128(mn), _mm_srli_si128(_mm256_castsi256_si128(mn), 8),
          _mm256_extracti128_si256(mn, 1), _mm_srli_si128(_mm256_extracti128_si256(mn, 1), 8)};
      for (size_t j = 0; j < 4; ++j) {
        const __m256i s = _mm256_cvtepu8_epi32(sc_q[j]);
        scale[4 * half + j] = _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
      }
      for (size_t j = 0; j < 2; ++j) {
        min[2 * half + j] =
            _mm256_or_si256(_mm256_cvtepu8_epi32(mn_q[2 * j]),
                            _mm256_slli_epi32(_mm256_cvtepu8_epi32(mn_q[2 * j + 1]), 16));
      }
    }
  }
};

// Lane r: sum_g m_g (bsum_2g + bsum_2g+1) for row r against one activation block.
__m256i min_sums(const ColumnScales& s, const BlockQ8_K& x) {
  // The 8 groups' bsum pairs as int16 (|sum| <= 32 * 128), two groups to a dword.
  const __m128i pairs =
      _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
  __m256i sum = _mm256_madd_epi16(s.min[0], _mm256_set1_epi32(_mm_extract_epi32(pairs, 0)));
  sum = _mm256_add_epi32(
      sum, _mm256_madd_epi16(s.min[1], _mm256_set1_epi32(_mm_extract_epi32(pairs, 1))));
  sum = _mm256_add_epi32(
      sum, _mm256_madd_epi16(s.min[2], _mm256_set1_epi32(_mm_extract_epi32(pairs, 2))));
  return _mm256_add_epi32(
      sum, _mm256_madd_epi16(s.min[3], _mm256_set1_epi32(_mm_extract_epi32(pairs, 3))));
}

// Lane r: sum over group g's 32 elements of q x for row r, as int16 pairs. The 8 vpmaddubsw
// results add up in int16: each pair is at most 2 * 15 * 128 = 3840 in magnitude, 8 of them 30720.
__m256i group_sums(const __m256i* q, const int8_t* x) {
  const auto bcast = [&](size_t j) {
    int32_t v;
    std::memcpy(&v, x + 4 * j, sizeof(v));
    return _mm256_set1_epi32(v);
  };
  __m256i s = _mm256_maddubs_epi16(q[0], bcast(0));
  for (size_t j = 1; j < 8; ++j) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[j], bcast(j)));
  return s;
}

// kTokens > 0: that many tokens, known to the compiler (decode's one token: sums in registers).
template <size_t kTokens>
void repacked_q4_k_n(const void* w, const void* x_rows, size_t x_stride, size_t tokens, size_t n,
                     float* y, size_t y_stride) {
  const size_t n_tokens = kTokens > 0 ? kTokens : tokens;
  const auto* columns = static_cast<const uint8_t*>(w);
  const auto* x = static_cast<const uint8_t*>(x_rows);
  const auto x_block = [&](size_t t, size_t b) -> const BlockQ8_K& {
    return reinterpret_cast<const BlockQ8_K*>(x + t * x_stride)[b];
  };
  const size_t nb = n / kQK_K;
  __m256 acc[kMaxTileTokens][8];
  zero_accumulators(acc, n_tokens);
  const __m256i m4 = _mm256_set1_epi8(0x0F), high_nibble_down = _mm256_set1_epi16(1 << 12);
  for (size_t b = 0; b < nb; ++b) {
    const auto* bytes = columns + b * sizeof(Q4KColumn);
    const auto& col = *reinterpret_cast<const Q4KColumn*>(bytes);
    const ColumnScales scales(col);
    __m256i isum[kMaxTileTokens];
    for (size_t t = 0; t < n_tokens; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (size_t g = 0; g < kGroups; ++g) {
      // Decode streams the columns from DRAM: ask for them ahead, an eighth of a column per
      // group (BM_Matmul q4_K_t1_repacked at 32000 x 2048: 12-17 -> 15-22 GB/s; the whole
      // column at once, before its groups, kept fewer lines in flight).
      constexpr size_t kGroupBytes = sizeof(Q4KColumn) / kGroups;
      prefetch_ahead<kGroupBytes>(bytes + g * kGroupBytes);
      __m256i q[8];
      for (size_t k = 0; k < 4; ++k) {
        const __m256i v = load_256(col.qs[g][k]);
        q[2 * k] = _mm256_and_si256(v, m4);
        // The high nibbles moved down by a multiply (x * 2^12 >> 16) rather than a shift: the
        // shuffle and shift pipes are this loop's bottleneck, the multiply pipes are not.
        q[2 * k + 1] = _mm256_mulhi_epu16(_mm256_andnot_si256(m4, v), high_nibble_down);
      }
      for (size_t t = 0; t < n_tokens; ++t) {
        const __m256i s = group_sums(q, x_block(t, b).qs + 32 * g);
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s, scales.scale[g]));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col.d)));
    const __m256 dmin =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col.dmin)));
    for (size_t t = 0; t < n_tokens; ++t) {
      const BlockQ8_K& xb = x_block(t, b);
      const __m256 vxd = _mm256_set1_ps(xb.d);
      __m256 term = _mm256_mul_ps(_mm256_mul_ps(d, vxd), _mm256_cvtepi32_ps(isum[t]));
      term = _mm256_sub_ps(
          term, _mm256_mul_ps(_mm256_mul_ps(dmin, vxd), _mm256_cvtepi32_ps(min_sums(scales, xb))));
      acc[t][b % 8] = _mm256_add_ps(acc[t][b % 8], term);
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) _mm256_storeu_ps(y + t * y_stride, hsum_ps_lanes(acc[t]));
}

void repacked_q4_k(const void* w, size_t /*w_stride*/, const void* x_rows, size_t x_stride,
                   size_t n_tokens, size_t n, float* y, size_t y_stride) {
  if (n_tokens == 1) return repacked_q4_k_n<1>(w, x_rows, x_stride, 1, n, y, y_stride);
  repacked_q4_k_n<0>(w, x_rows, x_stride, n_tokens, n, y, y_stride);
}

}  // namespace

void add_avx2_kquant_repacking(KernelSet& k) {
  k.repacked[static_cast<size_t>(DType::kQ4_K)] = {repack_q4_k, repacked_q4_k,
                                                   dequantize_repacked_q4_k};
}

}  // namespace slm::isa
