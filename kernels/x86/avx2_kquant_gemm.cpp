// AVX2 prefill tiles (KernelSet::gemm_tile) for the K-quants (Q2_K..Q6_K) on Q8_K activations,
// read as quantized (no packing): kTileRows weight rows x up to kMaxTileTokens tokens, one
// super-block at a time. Each of the tile's weight super-blocks is unpacked once (unsigned quants,
// the int16 multipliers of vpmaddwd, the multipliers of the activations' bsums) and reused for
// every token, where the row dot (avx2_kquant.cpp) unpacks it again for each token.
//
// Every element is bit-identical to that dot for the same (row, token). The dot forms, for each
// super-block b, exact integer sums isum_b (and msum_b for the types with mins), the float term
// (d_w d_x) float(isum_b) [- (dmin_w d_x) float(msum_b)] in lane b mod 8 of a float accumulator
// (starting at +0; the lanes of a last, partial batch of 8 get +0, which leaves them unchanged),
// and the result as hsum_ps of those 8 lanes. Here the integer sums are formed in another order
// (exactly), the terms of the 8 rows of a tile sit in the 8 lanes of one vector (one accumulator
// per token and lane b mod 8 of the dot), and the final lane sum is done vertically in hsum_ps's
// order: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). No FMA (-ffp-contract=off).
//
// The AVX-512 set keeps the AVX2 K-quant dots, so it keeps these tiles too.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/avx2_kquant_common.h"

namespace slm::isa {
namespace {

constexpr size_t kR = kTileRows;
static_assert(kR == 8, "the rows of a tile fill the 8 lanes of a vector");
constexpr size_t kChunks = kQK_K / 32;  // 32-element chunks per super-block

// One weight super-block ready for the integer sums with any Q8_K block x:
//   isum = sum_c lanes of maddwd(maddubs(q[c], x_c), sc[c])  [- (bmul . bsums) << shift]
//   msum = bmul . bsums                                        (types with mins)
// q[c]: the unsigned quants of elements 32c..32c+31; sc[c]: the int16 scale of each pair's group;
// bmul: the 16 int16 multipliers of x's bsums (the mins, or the scales that take the offset out).
struct Unpacked {
  __m256i q[kChunks], sc[kChunks], bmul;
};

// Q2_K: sc = low nibble of scales[g], the min (high nibble) multiplies bsum g.
struct Q2K {
  using Block = BlockQ2_K;
  static constexpr bool kHasMin = true;
  static constexpr int kOffsetShift = 0;
  static void unpack(const Block& w, Unpacked& u) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
    u.bmul = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = load_256(w.qs + 32 * h);
      for (int k = 0; k < 4; ++k) {
        u.q[4 * h + k] = two_bits(qs, k);
        u.sc[4 * h + k] = group16_scales(sc16, h, k);
      }
    }
  }
};

// Q3_K: signed 6-bit scales, quants q - 4: the offset taken out through the bsums (<< 2).
struct Q3K {
  using Block = BlockQ3_K;
  static constexpr bool kHasMin = false;
  static constexpr int kOffsetShift = 2;
  static void unpack(const Block& w, Unpacked& u) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales(w.scales));
    const __m256i hmask = load_256(w.hmask);
    u.bmul = sc16;
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = load_256(w.qs + 32 * h);
      for (int k = 0; k < 4; ++k) {
        u.q[4 * h + k] = q3k_quants(qs, hmask, h, k);
        u.sc[4 * h + k] = group16_scales(sc16, h, k);
      }
    }
  }
};

// Q4_K / Q5_K: groups of 32 (chunk c is group c), 6-bit scales and mins; each min multiplies the
// two bsums of its group.
template <typename W>
struct Q45K {
  using Block = W;
  static constexpr bool kHasMin = true;
  static constexpr int kOffsetShift = 0;
  static void unpack(const Block& w, Unpacked& u) {
    const __m128i sm = k4_scales_mins(w.scales);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    u.bmul = _mm256_setr_m128i(_mm_unpacklo_epi16(mn16, mn16), _mm_unpackhi_epi16(mn16, mn16));
    for (int h = 0; h < 4; ++h) {
      q45k_quants(w, h, u.q[2 * h], u.q[2 * h + 1]);
      u.sc[2 * h] = _mm256_shuffle_epi8(sc16, int16_lane_pick(2 * h, 2 * h));
      u.sc[2 * h + 1] = _mm256_shuffle_epi8(sc16, int16_lane_pick(2 * h + 1, 2 * h + 1));
    }
  }
};

// Q6_K: int8 scales, quants q - 32: the offset taken out through the bsums (<< 5).
struct Q6K {
  using Block = BlockQ6_K;
  static constexpr bool kHasMin = false;
  static constexpr int kOffsetShift = 5;
  static void unpack(const Block& w, Unpacked& u) {
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
    u.bmul = sc16;
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        u.q[4 * h + k] = q6k_quants(w, h, k);
        u.sc[4 * h + k] = group16_scales(sc16, h, k);
      }
    }
  }
};

// The fp16 field at byte `offset` of super-block b of each of the tile's rows, as floats.
template <typename Block>
__m256 row_fields(const uint8_t* w, size_t w_stride, size_t b, size_t offset) {
  return fp16_fields8(w + b * sizeof(Block) + offset, w_stride);
}

template <typename K>
void tile_with_q8_k(const void* w_rows, size_t w_stride, const void* x_rows, size_t x_stride,
                    size_t n_tokens, size_t n, float* y, size_t y_stride) {
  using Block = typename K::Block;
  const auto* w = static_cast<const uint8_t*>(w_rows);
  const auto* x = static_cast<const uint8_t*>(x_rows);
  const size_t nb = n / kQK_K;
  // acc[t][j], lane r: the dot's accumulator lane j for row r and token t.
  __m256 acc[kMaxTileTokens][8];
  zero_accumulators(acc, n_tokens);
  Unpacked u[kR];
  for (size_t b = 0; b < nb; ++b) {
    for (size_t r = 0; r < kR; ++r) {
      K::unpack(reinterpret_cast<const Block*>(w + r * w_stride)[b], u[r]);
    }
    // bmul_t[k], lane r: the int16 pair k of row r's bmul, so that one vpmaddwd per pair of bsums
    // forms that part of sum bmul . bsums for the 8 rows at once.
    alignas(32) int32_t pairs[kR][8];
    for (size_t r = 0; r < kR; ++r) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(pairs[r]), u[r].bmul);
    }
    __m256i bmul_t[8];
    for (size_t k = 0; k < 8; ++k) {
      bmul_t[k] = _mm256_setr_epi32(pairs[0][k], pairs[1][k], pairs[2][k], pairs[3][k], pairs[4][k],
                                    pairs[5][k], pairs[6][k], pairs[7][k]);
    }
    const __m256 d = row_fields<Block>(w, w_stride, b, offsetof(Block, d));
    __m256 dmin = _mm256_setzero_ps();
    if constexpr (K::kHasMin) dmin = row_fields<Block>(w, w_stride, b, offsetof(Block, dmin));
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto& xb = reinterpret_cast<const BlockQ8_K*>(x + t * x_stride)[b];
      // The next token's block is a row (x_stride bytes) away, which the hardware prefetchers
      // do not follow; fetching it ahead made these tiles 10-25 % faster (docs/performance.md).
      if (t + 1 < n_tokens) {
        const auto* next = reinterpret_cast<const char*>(&xb) + x_stride;
        for (size_t line = 0; line < sizeof(BlockQ8_K); line += 64) {
          _mm_prefetch(next + line, _MM_HINT_T0);
        }
      }
      __m256i xq[kChunks];
      for (size_t c = 0; c < kChunks; ++c) xq[c] = load_256(xb.qs + 32 * c);
      __m256i isum[kR];
      for (size_t r = 0; r < kR; ++r) {
        __m256i s[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (size_t c = 0; c < kChunks; ++c) {
          const __m256i p = _mm256_maddubs_epi16(u[r].q[c], xq[c]);
          s[c & 1] = _mm256_add_epi32(s[c & 1], _mm256_madd_epi16(p, u[r].sc[c]));
        }
        isum[r] = _mm256_add_epi32(s[0], s[1]);
      }
      // Lane r: sum bmul . bsums of row r.
      __m256i scaled_bsums = _mm256_setzero_si256();
      for (size_t k = 0; k < 8; ++k) {
        const __m256i pair = _mm256_set1_epi32(
            static_cast<int32_t>(load_u32_le(reinterpret_cast<const uint8_t*>(xb.bsums + 2 * k))));
        scaled_bsums = _mm256_add_epi32(scaled_bsums, _mm256_madd_epi16(bmul_t[k], pair));
      }
      __m256i isums = reduce8(isum);
      if constexpr (!K::kHasMin) {
        isums = _mm256_sub_epi32(isums, _mm256_slli_epi32(scaled_bsums, K::kOffsetShift));
      }
      const __m256 vxd = _mm256_set1_ps(xb.d);
      __m256 term = _mm256_mul_ps(_mm256_mul_ps(d, vxd), _mm256_cvtepi32_ps(isums));
      if constexpr (K::kHasMin) {
        term = _mm256_sub_ps(
            term, _mm256_mul_ps(_mm256_mul_ps(dmin, vxd), _mm256_cvtepi32_ps(scaled_bsums)));
      }
      acc[t][b % 8] = _mm256_add_ps(acc[t][b % 8], term);
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) _mm256_storeu_ps(y + t * y_stride, hsum_ps_lanes(acc[t]));
}

}  // namespace

void add_avx2_kquant_tiles(KernelSet& k) {
  k.gemm_tile[static_cast<size_t>(DType::kQ2_K)] = tile_with_q8_k<Q2K>;
  k.gemm_tile[static_cast<size_t>(DType::kQ3_K)] = tile_with_q8_k<Q3K>;
  k.gemm_tile[static_cast<size_t>(DType::kQ4_K)] = tile_with_q8_k<Q45K<BlockQ4_K>>;
  k.gemm_tile[static_cast<size_t>(DType::kQ5_K)] = tile_with_q8_k<Q45K<BlockQ5_K>>;
  k.gemm_tile[static_cast<size_t>(DType::kQ6_K)] = tile_with_q8_k<Q6K>;
}

}  // namespace slm::isa
