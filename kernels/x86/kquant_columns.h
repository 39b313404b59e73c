// Q4_K and Q6_K weights repacked at load (KernelSet::repacked, TileRepacking) so that decode
// reads each super-block of 8 rows as one column in which every vector lane belongs to one row
// (columns.h). Included by avx2_kquant_repack.cpp and avx512_kquant_repack.cpp: each compiles its
// own copy with its own flags, and where AVX-512 VNNI is on, a group's integer sums come from
// vpdpbusd instead of vpmaddubsw + vpaddw + vpmaddwd (the same exact integers).
//
// The row dots (avx2_kquant.cpp) spend most of their time per super-block outside the
// multiplies: decoding the scales, broadcasting each group's scale, and reducing each
// super-block's int32 lanes horizontally. Here 32-bit lane r of every vector holds 4 quants of
// row r, so 4 activation bytes broadcast to all lanes multiply the 8 rows at once and the sums
// of a row build up in its lane with no horizontal step; the scales arrive decoded for 8 rows in
// a few vector operations.
//
// Both columns keep the quants of each 32-element group g as 4 vectors of nibbles (qs / low):
// vector k, bytes 4r..4r+3 hold elements 32g + 8k + i (low nibbles) and 32g + 8k + 4 + i (high
// nibbles), i = 0..3, of row r. Unpacked, they are 8 operands, operand j holding elements
// 32g + 4j + i, which meet activation bytes 32g + 4j .. + 3 broadcast to every lane.
//
// A Q4_K column (super-block b of the tile's 8 rows; the same 8 * 144 bytes):
//   d[8], dmin[8]   the rows' fp16 scales, lane r for row r
//   low[64]         entry g * 8 + r: the low nibbles of group g's scale and min for row r
//   high[32]        entry e's top 2 bits of scale and min (scale >> 4 | (min >> 4) << 2) in the
//                   low nibble of byte e (e < 32) or the high nibble of byte e - 32
//   qs[8][4][32]    the nibbles, as above
// A Q6_K column (8 * 210 bytes):
//   d[8]            the rows' fp16 scales
//   scales[8][16]   the int8 scales of the 16-element groups 2p and 2p + 1: bytes 0-3 rows 0-3
//                   of 2p, 4-7 rows 0-3 of 2p + 1, 8-11 rows 4-7 of 2p, 12-15 rows 4-7 of 2p + 1,
//                   so that, widened to int16, two unpacks give each group's per-row pairs
//   groups[8]       each 32-element group's bytes together, in the order the kernel reads them:
//     low[4][32]    the low 4 bits of the quants, as above
//     high[2][32]   vector m, byte 4r + i: bits 2j, 2j + 1 are the top 2 bits of operand
//                   4m + j's byte 4r + i
//
// Every element is bit-identical to the row dot of the original row: the same exact integer
// sums per super-block (Q4_K: isum = sum_g sc_g sum q x, msum = sum_g m_g (bsum_2g + bsum_2g+1);
// Q6_K: isum = sum_g sc_g sum q x - 32 sum_g sc_g bsum_g, over 16-element groups), the same float
// operations for its term, the term in the accumulator of lane b mod 8 of the dot (one
// accumulator per token and that lane; the dot's partial last batch adds +0 to the others, which
// changes nothing), and the dot's hsum_ps done vertically in its order, as tile_with_q8_k does.
// No FMA (-ffp-contract=off).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/columns.h"

// Set where the including file is compiled with AVX-512 VNNI (and VL, for its 256-bit form).
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define SLM_KQUANT_VNNI 1
#include "kernels/x86/avx512_common.h"
#else
#define SLM_KQUANT_VNNI 0
#endif

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

struct Q6KColumn {
  uint16_t d[kR];
  int8_t scales[kGroups][16];
  struct Group {
    uint8_t low[4][32], high[2][32];
  } groups[kGroups];
};
static_assert(sizeof(Q6KColumn) == kR * sizeof(BlockQ6_K), "repacking keeps the size");

// Where row r's scale of 16-element group s (of pair s / 2) lies in Q6KColumn::scales[s / 2].
constexpr size_t q6k_scale_at(size_t s, size_t r) { return r / 4 * 8 + s % 2 * 4 + r % 4; }

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
        store_nibbles(q + 32 * g, r, c.qs[g]);
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
      for (size_t l = 0; l < 32; ++l) {
        const NibbleAt at(r, l);
        q[32 * g + l] = (c.qs[g][at.k][at.byte] >> at.shift) & 0x0F;
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

// The 256 quants (0..63) of a Q6_K block in element order: per 128-element half h and l < 32,
// ql[64h + l] and ql[64h + 32 + l] give the low 4 bits of elements 128h + l, + 32 (low nibbles)
// and + 64, + 96 (high nibbles); bits 2k, 2k + 1 of qh[32h + l] their top 2 bits. Eight bytes at
// a time.
void q6k_block_quants(const BlockQ6_K& b, uint8_t* q) {
  for (size_t h = 0; h < 2; ++h) {
    for (size_t k = 0; k < 4; ++k) {
      for (size_t l = 0; l < 32; l += 8) {
        const uint64_t ql = load64(b.ql + 64 * h + 32 * (k % 2) + l);
        const uint64_t low = (k < 2 ? ql : ql >> 4) & kBytes(0x0F);
        const uint64_t top = (load64(b.qh + 32 * h + l) >> (2 * k)) & kBytes(3);
        const uint64_t v = low | top << 4;
        std::memcpy(q + 128 * h + 32 * k + l, &v, sizeof(v));
      }
    }
  }
}

// The inverse of q6k_block_quants.
void q6k_block_store(const uint8_t* q, BlockQ6_K& b) {
  std::memset(b.ql, 0, sizeof(b.ql));
  std::memset(b.qh, 0, sizeof(b.qh));
  for (size_t h = 0; h < 2; ++h) {
    for (size_t l = 0; l < 32; ++l) {
      for (size_t k = 0; k < 4; ++k) {
        const uint8_t v = q[128 * h + 32 * k + l];
        b.ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((v & 0x0F) << (k < 2 ? 0 : 4));
        b.qh[32 * h + l] |= static_cast<uint8_t>((v >> 4) << (2 * k));
      }
    }
  }
}

void repack_q6_k(const void* rows, size_t n, void* dst) {
  const size_t nb = n / kQK_K;
  const auto* w = static_cast<const BlockQ6_K*>(rows);
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < nb; ++b, out += sizeof(Q6KColumn)) {
    Q6KColumn c{};
    for (size_t r = 0; r < kR; ++r) {
      const BlockQ6_K& block = w[r * nb + b];
      c.d[r] = block.d;
      for (size_t s = 0; s < kQK_K / 16; ++s) c.scales[s / 2][q6k_scale_at(s, r)] = block.scales[s];
      uint8_t q[kQK_K];
      q6k_block_quants(block, q);
      for (size_t g = 0; g < kGroups; ++g) {
        Q6KColumn::Group& out_g = c.groups[g];
        store_nibbles(q + 32 * g, r, out_g.low);
        for (size_t m = 0; m < 2; ++m) {  // operands 4m .. 4m + 3's top 2 bits, at bits 2j
          const uint64_t top01 = (load64(q + 32 * g + 16 * m) >> 4) & kBytes(3);
          const uint64_t top23 = (load64(q + 32 * g + 16 * m + 8) >> 4) & kBytes(3);
          const uint64_t pairs = top01 | top23 << 4;
          const auto v = static_cast<uint32_t>(pairs | (pairs >> 32) << 2);
          std::memcpy(&out_g.high[m][4 * r], &v, sizeof(v));
        }
      }
    }
    std::memcpy(out, &c, sizeof(c));
  }
}

void dequantize_repacked_q6_k(const void* run, size_t r, size_t n, float* y) {
  const auto* columns = static_cast<const uint8_t*>(run);
  for (size_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    Q6KColumn c;
    std::memcpy(&c, columns + b * sizeof(Q6KColumn), sizeof(c));
    BlockQ6_K block;
    block.d = c.d[r];
    for (size_t s = 0; s < kQK_K / 16; ++s) block.scales[s] = c.scales[s / 2][q6k_scale_at(s, r)];
    uint8_t q[kQK_K];
    for (size_t g = 0; g < kGroups; ++g) {
      for (size_t l = 0; l < 32; ++l) {
        const NibbleAt at(r, l);
        const size_t j = l / 4;
        const int low = (c.groups[g].low[at.k][at.byte] >> at.shift) & 0x0F;
        const int top = (c.groups[g].high[j / 4][4 * r + l % 4] >> (2 * (j % 4))) & 3;
        q[32 * g + l] = static_cast<uint8_t>(low | top << 4);
      }
    }
    q6k_block_store(q, block);
    ref::dequantize_row(DType::kQ6_K, &block, y, kQK_K);
  }
}

// Q4_K: a column's scales and mins, lane r for row r: scale[g] holds group g's scale as an int16
// pair (a vpmaddwd multiplier), or with VNNI as an int32; min[k] the mins of groups 2k and
// 2k + 1 as int16 pairs (to pair with their bsums).
struct Q4K {
  using Column = Q4KColumn;
  static constexpr auto repack = repack_q4_k;
  static constexpr auto dequantize = dequantize_repacked_q4_k;
  struct Scales {
    __m256i scale[kGroups], min[kGroups / 2];

    explicit Scales(const Q4KColumn& c) {
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
          scale[4 * half + j] = SLM_KQUANT_VNNI ? s : _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
        }
        for (size_t j = 0; j < 2; ++j) {
          min[2 * half + j] =
              _mm256_or_si256(_mm256_cvtepu8_epi32(mn_q[2 * j]),
                              _mm256_slli_epi32(_mm256_cvtepu8_epi32(mn_q[2 * j + 1]), 16));
        }
      }
    }
  };

#if SLM_KQUANT_VNNI
  // With VNNI the odd operands keep their nibbles in place, 16 times their value: vpdpbusd
  // takes 0..240 without saturating, and the exact 16 * (sum q x) is shifted back once per
  // group instead of every operand once (BM_Matmul q4_K_t1_repacked 5632 x 2048, GFLOP/s, best
  // of 3, alternated: 1 token 128-131 -> 132-133, 512 tokens 272-274 -> 278-279).
  static void unpack(const Column& c, size_t g, __m256i* q) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (size_t k = 0; k < 4; ++k) {
      const __m256i bytes = load_256(c.qs[g][k]);
      q[2 * k] = _mm256_and_si256(bytes, m4);
      q[2 * k + 1] = _mm256_andnot_si256(m4, bytes);
    }
  }
#else
  static void unpack(const Column& c, size_t g, __m256i* q) { nibble_operands(c.qs[g], q); }
#endif

  // Lane r: group g's sc_g sum q x for row r. The 8 vpmaddubsw results add up in int16: each
  // pair is at most 2 * 15 * 128 = 3840 in magnitude, 8 of them 30720.
  static __m256i group_sums(const __m256i* q, const Scales& s, size_t g, const int8_t* x) {
#if SLM_KQUANT_VNNI
    // Two chains of vpdpbusd, each with its activation bytes broadcast from memory inside the
    // instruction (one chain of separately broadcast bytes: 1 token 120-131 GFLOP/s, this
    // 131-150, as above). high16: 16 times the high nibbles' sum.
    __m256i low = _mm256_setzero_si256(), high16 = low;
    for (size_t j = 0; j < 8; j += 2) {
      low = dpbusd_broadcast(low, q[j], x + 4 * j);
      high16 = dpbusd_broadcast(high16, q[j + 1], x + 4 * (j + 1));
    }
    return _mm256_mullo_epi32(_mm256_add_epi32(low, _mm256_srai_epi32(high16, 4)), s.scale[g]);
#endif
    __m256i p = _mm256_maddubs_epi16(q[0], broadcast4(x, 0));
    for (size_t j = 1; j < 8; ++j)
      p = _mm256_add_epi16(p, _mm256_maddubs_epi16(q[j], broadcast4(x, j)));
    return _mm256_madd_epi16(p, s.scale[g]);
  }
#if SLM_KQUANT_VNNI
  // The same for two columns at once (16 rows; b's in lanes 8..15).
  static __m512i group_sums(const __m512i* q, const Scales& a, const Scales& b, size_t g,
                            const int8_t* x) {
    __m512i low = _mm512_setzero_si512(), high16 = low;
    for (size_t j = 0; j < 8; j += 2) {
      low = dpbusd_broadcast(low, q[j], x + 4 * j);
      high16 = dpbusd_broadcast(high16, q[j + 1], x + 4 * (j + 1));
    }
    return _mm512_mullo_epi32(_mm512_add_epi32(low, _mm512_srai_epi32(high16, 4)),
                              join(a.scale[g], b.scale[g]));
  }
#endif

  // (d x.d) isum - (dmin x.d) msum, msum = sum_g m_g (bsum_2g + bsum_2g+1) for row r in lane r.
  static __m256 term(const Column& c, const Scales& s, __m256i isum, const BlockQ8_K& x) {
    // The 8 groups' bsum pairs as int16 (|sum| <= 32 * 128), two groups to a dword.
    const __m128i pairs =
        _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
    __m256i msum = _mm256_madd_epi16(s.min[0], _mm256_set1_epi32(_mm_extract_epi32(pairs, 0)));
    msum = _mm256_add_epi32(
        msum, _mm256_madd_epi16(s.min[1], _mm256_set1_epi32(_mm_extract_epi32(pairs, 1))));
    msum = _mm256_add_epi32(
        msum, _mm256_madd_epi16(s.min[2], _mm256_set1_epi32(_mm_extract_epi32(pairs, 2))));
    msum = _mm256_add_epi32(
        msum, _mm256_madd_epi16(s.min[3], _mm256_set1_epi32(_mm_extract_epi32(pairs, 3))));
    const __m256 vxd = _mm256_set1_ps(x.d);
    const __m256 term = _mm256_mul_ps(_mm256_mul_ps(fp16x8(c.d), vxd), _mm256_cvtepi32_ps(isum));
    return _mm256_sub_ps(
        term, _mm256_mul_ps(_mm256_mul_ps(fp16x8(c.dmin), vxd), _mm256_cvtepi32_ps(msum)));
  }
};

// Q6_K: scale[s] holds 16-element group s's scale as an int16 pair (with VNNI, an int32), lane r
// for row r; pairs[p] the scales of groups 2p and 2p + 1 (to pair with their bsums).
struct Q6K {
  using Column = Q6KColumn;
  static constexpr auto repack = repack_q6_k;
  static constexpr auto dequantize = dequantize_repacked_q6_k;
  struct Scales {
    __m256i scale[2 * kGroups], pairs[kGroups];

    explicit Scales(const Q6KColumn& c) {
      for (size_t p = 0; p < kGroups; ++p) {
        // Low 128 bits: rows 0-3 of group 2p, then of 2p + 1; high 128 bits: rows 4-7.
        const __m256i v =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.scales[p])));
        scale[2 * p] = _mm256_unpacklo_epi16(v, v);
        scale[2 * p + 1] = _mm256_unpackhi_epi16(v, v);
        if (SLM_KQUANT_VNNI) {  // the pair's high half, sign-extended
          scale[2 * p] = _mm256_srai_epi32(scale[2 * p], 16);
          scale[2 * p + 1] = _mm256_srai_epi32(scale[2 * p + 1], 16);
        }
        pairs[p] = _mm256_unpacklo_epi16(v, _mm256_srli_si256(v, 8));
      }
    }
  };

  // The 6-bit operands: the nibbles, with their top 2 bits (high: operand 4m + j's at bits
  // 2j, 2j + 1) moved to bits 4 and 5.
  static void unpack(const Column& c, size_t g, __m256i* q) {
    nibble_operands(c.groups[g].low, q);
    const __m256i m = _mm256_set1_epi8(0x30);
    for (size_t h = 0; h < 2; ++h) {
      const __m256i top = load_256(c.groups[g].high[h]);
      __m256i* o = q + 4 * h;
      // 16-bit shifts: the mask keeps only bits that stayed within their byte.
      o[0] = _mm256_or_si256(o[0], _mm256_and_si256(_mm256_slli_epi16(top, 4), m));
      o[1] = _mm256_or_si256(o[1], _mm256_and_si256(_mm256_slli_epi16(top, 2), m));
      o[2] = _mm256_or_si256(o[2], _mm256_and_si256(top, m));
      o[3] = _mm256_or_si256(o[3], _mm256_and_si256(_mm256_srli_epi16(top, 2), m));
    }
  }

  // Lane r: sum over group g's two 16-element groups of sc sum q x for row r. Two vpmaddubsw
  // results add up in int16 (each pair at most 2 * 63 * 128 = 16128 in magnitude) before their
  // scale multiplies them.
  static __m256i group_sums(const __m256i* q, const Scales& s, size_t g, const int8_t* x) {
#if SLM_KQUANT_VNNI
    // The activation bytes broadcast inside vpdpbusd (BM_Matmul q6_K_t1_repacked 5632 x 2048,
    // 1 token: 94-96 -> 101-102 GFLOP/s against separate broadcasts).
    __m256i low = _mm256_setzero_si256(), high = low;  // the two 16-element groups
    for (size_t j = 0; j < 4; ++j) {
      low = dpbusd_broadcast(low, q[j], x + 4 * j);
      high = dpbusd_broadcast(high, q[j + 4], x + 4 * (j + 4));
    }
    return _mm256_add_epi32(_mm256_mullo_epi32(low, s.scale[2 * g]),
                            _mm256_mullo_epi32(high, s.scale[2 * g + 1]));
#endif
    __m256i sum = _mm256_setzero_si256();
    for (size_t j = 0; j < 8; j += 2) {
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(q[j], broadcast4(x, j)),
                                         _mm256_maddubs_epi16(q[j + 1], broadcast4(x, j + 1)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s.scale[2 * g + j / 4]));
    }
    return sum;
  }
#if SLM_KQUANT_VNNI
  // The same for two columns at once (16 rows; b's in lanes 8..15).
  static __m512i group_sums(const __m512i* q, const Scales& a, const Scales& b, size_t g,
                            const int8_t* x) {
    __m512i low = _mm512_setzero_si512(), high = low;
    for (size_t j = 0; j < 4; ++j) {
      low = dpbusd_broadcast(low, q[j], x + 4 * j);
      high = dpbusd_broadcast(high, q[j + 4], x + 4 * (j + 4));
    }
    return _mm512_add_epi32(_mm512_mullo_epi32(low, join(a.scale[2 * g], b.scale[2 * g])),
                            _mm512_mullo_epi32(high, join(a.scale[2 * g + 1], b.scale[2 * g + 1])));
  }
#endif

  // (d x.d) (isum - 32 sum_s sc_s bsum_s): the quants' offset of 32 taken out through the
  // bsums, as the row dot does.
  static __m256 term(const Column& c, const Scales& s, __m256i isum, const BlockQ8_K& x) {
    __m256i offset = _mm256_setzero_si256();
    for (size_t p = 0; p < kGroups; ++p) {
      int32_t bsum_pair;
      std::memcpy(&bsum_pair, x.bsums + 2 * p, sizeof(bsum_pair));
      offset =
          _mm256_add_epi32(offset, _mm256_madd_epi16(s.pairs[p], _mm256_set1_epi32(bsum_pair)));
    }
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(offset, 5));
    return _mm256_mul_ps(_mm256_mul_ps(fp16x8(c.d), _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(isum));
  }
};

// kTokens > 0: that many tokens, known to the compiler (decode's one token: sums in registers).
template <typename Format, size_t kTokens>
void repacked_n(const void* w, const void* x_rows, size_t x_stride, size_t tokens, size_t n,
                float* y, size_t y_stride) {
  using Column = typename Format::Column;
  const size_t n_tokens = kTokens > 0 ? kTokens : tokens;
  const auto* columns = static_cast<const uint8_t*>(w);
  const auto* x = static_cast<const uint8_t*>(x_rows);
  const auto x_block = [&](size_t t, size_t b) -> const BlockQ8_K& {
    return reinterpret_cast<const BlockQ8_K*>(x + t * x_stride)[b];
  };
  const size_t nb = n / kQK_K;
  __m256 acc[kMaxTileTokens][8];
  zero_accumulators(acc, n_tokens);
  for (size_t b = 0; b < nb; ++b) {
    const auto* bytes = columns + b * sizeof(Column);
    const auto& col = *reinterpret_cast<const Column*>(bytes);
    const typename Format::Scales scales(col);
    __m256i isum[kMaxTileTokens];
    for (size_t t = 0; t < n_tokens; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (size_t g = 0; g < kGroups; ++g) {
      // Decode streams the columns from DRAM. The AVX2 copy asks for them ahead, an eighth of a
      // column per group (BM_Matmul q4_K_t1_repacked at 32000 x 2048: 12-17 -> 15-22 GB/s; the
      // whole column at once, before its groups, kept fewer lines in flight). The AVX-512 copy
      // leaves it to the hardware prefetcher, as the Q4_0 tiles do: on this Zen 4 it streams
      // faster alone (slm bench TinyLlama-1.1B Q4_K_M tg64, 2 threads, alternated: 66.6-68.1 ->
      // 81.8-84.3 t/s; Llama-3.2-1B 53.6-59.2 -> 69.9-73.5).
      constexpr size_t kGroupBytes = sizeof(Column) / kGroups;
      if (!SLM_KQUANT_VNNI) prefetch_ahead<kGroupBytes>(bytes + g * kGroupBytes);
      __m256i q[8];
      Format::unpack(col, g, q);
      for (size_t t = 0; t < n_tokens; ++t) {
        isum[t] =
            _mm256_add_epi32(isum[t], Format::group_sums(q, scales, g, x_block(t, b).qs + 32 * g));
      }
    }
    for (size_t t = 0; t < n_tokens; ++t) {
      acc[t][b % 8] =
          _mm256_add_ps(acc[t][b % 8], Format::term(col, scales, isum[t], x_block(t, b)));
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) _mm256_storeu_ps(y + t * y_stride, hsum_ps_lanes(acc[t]));
}

template <typename Format>
void repacked_tile(const void* w, size_t /*w_stride*/, const void* x_rows, size_t x_stride,
                   size_t n_tokens, size_t n, float* y, size_t y_stride) {
  if (n_tokens == 1) return repacked_n<Format, 1>(w, x_rows, x_stride, 1, n, y, y_stride);
  repacked_n<Format, 0>(w, x_rows, x_stride, n_tokens, n, y, y_stride);
}

#if SLM_KQUANT_VNNI
// repacked_tile over two consecutive runs (TileRepacking::tile_pair) in 512-bit vectors: the
// same integer sums, 16 rows per vpdpbusd; each run's term is formed as above, in 256-bit
// halves, so every element keeps its bits.
template <typename Format>
void repacked_pair(const void* w, size_t w_stride, const void* x_rows, size_t x_stride,
                   size_t n_tokens, size_t n, float* y, size_t y_stride) {
  using Column = typename Format::Column;
  const auto* runs = static_cast<const uint8_t*>(w);
  const size_t run_bytes = kR * w_stride;
  const auto* x = static_cast<const uint8_t*>(x_rows);
  const auto x_block = [&](size_t t, size_t b) -> const BlockQ8_K& {
    return reinterpret_cast<const BlockQ8_K*>(x + t * x_stride)[b];
  };
  const size_t nb = n / kQK_K;
  __m512 acc[kMaxTileTokens][8];
  for (size_t t = 0; t < n_tokens; ++t) {
    for (__m512& a : acc[t]) a = _mm512_setzero_ps();
  }
  for (size_t b = 0; b < nb; ++b) {
    const auto& col_a = *reinterpret_cast<const Column*>(runs + b * sizeof(Column));
    const auto& col_b = *reinterpret_cast<const Column*>(runs + run_bytes + b * sizeof(Column));
    const typename Format::Scales scales_a(col_a), scales_b(col_b);
    __m512i isum[kMaxTileTokens];
    for (size_t t = 0; t < n_tokens; ++t) isum[t] = _mm512_setzero_si512();
    for (size_t g = 0; g < kGroups; ++g) {
      __m256i qa[8], qb[8];
      Format::unpack(col_a, g, qa);
      Format::unpack(col_b, g, qb);
      __m512i q[8];
      for (size_t j = 0; j < 8; ++j) q[j] = join(qa[j], qb[j]);
      for (size_t t = 0; t < n_tokens; ++t) {
        isum[t] = _mm512_add_epi32(
            isum[t], Format::group_sums(q, scales_a, scales_b, g, x_block(t, b).qs + 32 * g));
      }
    }
    for (size_t t = 0; t < n_tokens; ++t) {
      const BlockQ8_K& xb = x_block(t, b);
      const __m256 term_a = Format::term(col_a, scales_a, _mm512_castsi512_si256(isum[t]), xb);
      const __m256 term_b =
          Format::term(col_b, scales_b, _mm512_extracti64x4_epi64(isum[t], 1), xb);
      acc[t][b % 8] = _mm512_add_ps(acc[t][b % 8], join(term_a, term_b));
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) _mm512_storeu_ps(y + t * y_stride, hsum_ps_lanes(acc[t]));
}
#endif

template <typename Format>
constexpr TileRepacking kKQuantRepacking = {Format::repack, repacked_tile<Format>,
                                            Format::dequantize,
#if SLM_KQUANT_VNNI
                                            repacked_pair<Format>
#else
                                            nullptr
#endif
};

}  // namespace
}  // namespace slm::isa
