// AVX-512 VNNI tiles over Q8_0, Q4_0 and Q5_0 weights repacked at load (KernelSet::repacked,
// TileRepacking), for decode and prefill alike. They read the activations as the AVX2 set packs
// them (packed_q8_0.h) and give every (row, token) bit-identically the AVX2 row dot the AVX-512
// set keeps (dot_with_q8_0 in avx2.cpp; Q5_0's in avx2_kquant.cpp).
//
// The AVX2 tiles (avx2_gemm.cpp) interleave 8 blocks of one row so that a vector's lanes hold 8
// blocks, and spend as much on forming and folding int16 sums as on the multiplies. Here the
// weights are columns (columns.h): block b of the tile's 8 rows, lane r for row r. One vpdpbusd
// multiplies 4 unsigned weight bytes of each row by 4 activation bytes broadcast from memory and
// adds the 4 products into the row's int32 lane, so a block's 8 rows cost 8 vpdpbusd, and its sums
// come out one row per lane, ready for the float step.
//
// vpdpbusd takes one operand unsigned, so the weights are kept as q + offset >= 0 and the offset
// is taken out through the activation block's sum of quants (packed with it): sum((q - o) x) =
// sum(q x) - o sum(x), exact in int32. Q4_0: nibbles q, o = 8; Q5_0: q in [0, 31], o = 16; Q8_0:
// w + 128 (its bytes with the sign bit flipped), o = 128.
//
// Each block's term float(sumi) * (d_w * d_x) is formed by the row dot's float operations and
// added, as there, into the accumulator of lane b mod 8 over full groups of 8 blocks (one vector
// per lane and token, a row per vector lane), reduced in hsum_ps's order (hsum_ps_lanes), plus a
// sequential sum of the remaining blocks' terms. No FMA (-ffp-contract=off).
//
// The same code also runs two consecutive tiles at once in 512-bit vectors (Lanes16,
// TileRepacking::tile_pair): one broadcast and each float step then serve 16 rows, which on a
// Zen 4 took prefill from 235-241 to 299-313 GFLOP/s per thread (docs/performance.md).
// First, to silence two warnings before any intrinsics header is read:
// clang-format off
#include "kernels/x86/avx512_intrinsics.h"
// clang-format on

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/avx512_common.h"
#include "kernels/x86/columns.h"
#include "kernels/x86/packed_q8_0.h"

namespace slm::isa {
namespace {

constexpr size_t kR = kTileRows;
static_assert(kR == 8, "the rows of a tile fill the 8 lanes of a vector");
constexpr size_t kQuantDwords = kQK8_0 / 4;  // a block's operands
constexpr size_t kTokenStep = 4;             // tokens whose sums a tile forms side by side

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The inverse of store_nibbles: row r's 32 quants (0..15) in element order.
void load_nibbles(const uint8_t (*v)[32], size_t r, uint8_t* q) {
  for (size_t e = 0; e < kQK8_0; ++e) {
    const NibbleAt at(r, e);
    q[e] = (v[at.k][at.byte] >> at.shift) & 0x0F;
  }
}

// For each weight type: a block's 32 quants in element order (bytes), unsigned (q + offset) as
// the columns hold them, and back; a row's quants in and out of a column.
struct Q4_0 {
  using Block = BlockQ4_0;
  static constexpr DType kType = DType::kQ4_0;
  static constexpr int kOffsetShift = 3;  // offset 8
  struct Column {
    uint16_t d[kR];
    uint8_t nibbles[4][32];
  };
  static __m256i quants(const Block& b) { return nibbles32(b.qs); }
  static void store(__m256i q, Block& b) { store_nibbles32(q, b.qs); }
  static void put(const uint8_t* q, size_t r, Column& c) { store_nibbles(q, r, c.nibbles); }
  static void get(const Column& c, size_t r, uint8_t* q) { load_nibbles(c.nibbles, r, q); }
  static void operands(const Column& c, __m256i* q) { nibble_operands(c.nibbles, q); }
};

// Q5_0 columns add to Q4_0's nibbles one vector whose bit m of byte 4r + i is the 5th bit of
// operand m's byte 4r + i.
struct Q5_0 {
  using Block = BlockQ5_0;
  static constexpr DType kType = DType::kQ5_0;
  static constexpr int kOffsetShift = 4;  // offset 16
  struct Column {
    uint16_t d[kR];
    uint8_t nibbles[4][32];
    uint8_t high[32];
  };
  static __m256i quants(const Block& b) { return q5_0_quants(b.qs, b.qh); }
  static void store(__m256i q, Block& b) { store_q5_0_quants(q, b.qs, b.qh); }
  // Word by word: operand m's bytes 4r .. 4r + 3 give their bit 4 to bit m of the same bytes.
  static void put(const uint8_t* q, size_t r, Column& c) {
    store_nibbles(q, r, c.nibbles);
    uint32_t high = 0;
    for (size_t m = 0; m < kQuantDwords; ++m)
      high |= ((load_u32(q + 4 * m) >> 4) & 0x01010101u) << m;
    std::memcpy(&c.high[4 * r], &high, sizeof(high));
  }
  static void get(const Column& c, size_t r, uint8_t* q) {
    load_nibbles(c.nibbles, r, q);
    const uint32_t high = load_u32(&c.high[4 * r]);
    for (size_t m = 0; m < kQuantDwords; ++m) {
      const uint32_t v = load_u32(q + 4 * m) | ((high >> m) & 0x01010101u) << 4;
      std::memcpy(q + 4 * m, &v, sizeof(v));
    }
  }
  static void operands(const Column& c, __m256i* q) {
    nibble_operands(c.nibbles, q);
    const __m256i high = load_256(c.high);
    for (size_t m = 0; m < kQuantDwords; ++m) {
      // Bit m of each byte to bit 4: a 16-bit shift, then the mask keeps only bits that stayed
      // within their byte.
      const __m256i moved = m <= 4 ? _mm256_slli_epi16(high, static_cast<int>(4 - m))
                                   : _mm256_srli_epi16(high, static_cast<int>(m - 4));
      q[m] = _mm256_or_si256(q[m], _mm256_and_si256(moved, _mm256_set1_epi8(0x10)));
    }
  }
};

// Q8_0 columns: operand m's vector, bytes 4r + i: byte 4m + i of row r's block, sign bit flipped.
struct Q8_0 {
  using Block = BlockQ8_0;
  static constexpr DType kType = DType::kQ8_0;
  static constexpr int kOffsetShift = 7;  // offset 128
  struct Column {
    uint16_t d[kR];
    uint8_t q[kQuantDwords][32];
  };
  static __m256i quants(const Block& b) {
    return _mm256_xor_si256(load_256(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static void store(__m256i q, Block& b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs),
                        _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
  }
  static void put(const uint8_t* q, size_t r, Column& c) {
    for (size_t m = 0; m < kQuantDwords; ++m) std::memcpy(&c.q[m][4 * r], q + 4 * m, 4);
  }
  static void get(const Column& c, size_t r, uint8_t* q) {
    for (size_t m = 0; m < kQuantDwords; ++m) std::memcpy(q + 4 * m, &c.q[m][4 * r], 4);
  }
  static void operands(const Column& c, __m256i* q) {
    for (size_t m = 0; m < kQuantDwords; ++m) q[m] = load_256(c.q[m]);
  }
};

template <typename W>
void repack(const void* rows, size_t n, void* dst) {
  using Block = typename W::Block;
  using Column = typename W::Column;
  static_assert(sizeof(Column) == kR * sizeof(Block), "repacking keeps the size");
  const size_t nb = n / kQK8_0;
  const auto* w = static_cast<const Block*>(rows);
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < nb; ++b, out += sizeof(Column)) {
    Column c{};
    for (size_t r = 0; r < kR; ++r) {
      const Block& block = w[r * nb + b];
      c.d[r] = block.d;
      alignas(32) uint8_t q[kQK8_0];
      _mm256_store_si256(reinterpret_cast<__m256i*>(q), W::quants(block));
      W::put(q, r, c);
    }
    std::memcpy(out, &c, sizeof(c));
  }
}

// Row r of a repacked run, dequantized: its blocks rebuilt, then the reference's dequantize.
template <typename W>
void dequantize_repacked_row(const void* run, size_t r, size_t n, float* y) {
  using Column = typename W::Column;
  const auto* columns = static_cast<const uint8_t*>(run);
  for (size_t b = 0; b < n / kQK8_0; ++b, y += kQK8_0) {
    Column c;
    std::memcpy(&c, columns + b * sizeof(Column), sizeof(c));
    typename W::Block block;
    block.d = c.d[r];
    uint8_t q[kQK8_0];
    W::get(c, r, q);
    W::store(load_256(q), block);
    ref::dequantize_row(W::kType, &block, y, kQK8_0);
  }
}

// The vectors a tile pass works in: one tile's 8 rows in 256-bit vectors (Lanes8), or two
// consecutive tiles' 16 rows in 512-bit ones (Lanes16; lanes 8..15 for the second run). Every
// lane does the same operations either way, so both give the same bits.
struct Lanes8 {
  static constexpr size_t kTiles = 1;
  using I = __m256i;
  using F = __m256;
  static I splat(int32_t v) { return _mm256_set1_epi32(v); }
  static F splat(float v) { return _mm256_set1_ps(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static void store(float* y, F v) { _mm256_storeu_ps(y, v); }
  // The runs' 256-bit operands (and fp16 scales) as one vector.
  static I join(const __m256i* q) { return q[0]; }
  static F join(const __m256* d) { return d[0]; }
};

struct Lanes16 {
  static constexpr size_t kTiles = 2;
  using I = __m512i;
  using F = __m512;
  static I splat(int32_t v) { return _mm512_set1_epi32(v); }
  static F splat(float v) { return _mm512_set1_ps(v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static void store(float* y, F v) { _mm512_storeu_ps(y, v); }
  static I join(const __m256i* q) { return isa::join(q[0], q[1]); }
  static F join(const __m256* d) { return isa::join(d[0], d[1]); }
};

// Lane r of sums[i]: sum((q - offset) x) over a block for row r and token i < kT, given the
// block's operands q, and for each token -offset sum(x) (start) and its activation dwords:
// operand m meets dword m, at x[i] + (m % 4) * kStride + (m / 4) * 16 (a packed group
// interleaves them, 32 bytes apart; a plain block does not, 4 bytes apart). The tokens' chains
// are interleaved: one chain of 8 dependent vpdpbusd leaves the multipliers idle most of the time.
template <typename V, size_t kStride, size_t kT>
[[gnu::always_inline]] inline void block_sums(const typename V::I* q, const uint8_t* const* x,
                                              const int32_t* start, typename V::I* sums) {
  for (size_t i = 0; i < kT; ++i) sums[i] = V::splat(start[i]);
  for (size_t m = 0; m < kQuantDwords; ++m) {
    for (size_t i = 0; i < kT; ++i) {
      sums[i] = dpbusd_broadcast(sums[i], q[m], x[i] + (m % 4) * kStride + (m / 4) * 16);
    }
  }
}

// acc + float(sumi) * (d_w * d_x), lane by lane, as the row dot forms its terms.
template <typename V>
[[gnu::always_inline]] inline typename V::F add_term(typename V::F acc, typename V::I sumi,
                                                     typename V::F d_w, float d_x) {
  const typename V::F dd = V::mul(d_w, V::splat(d_x));
  return V::add(acc, V::mul(V::to_float(sumi), dd));
}

// A block's terms for kT tokens, given their activation dwords x (kStride as in block_sums),
// -offset sum(x) (start) and scales: added to acc[i · acc_stride], or with kFresh to 0.0f (the
// accumulators' first terms: nothing is read from them).
template <typename V, size_t kStride, size_t kT, bool kFresh = false>
[[gnu::always_inline]] inline void add_block_terms(const typename V::I* q, typename V::F d_w,
                                                   const uint8_t* const* x, const int32_t* start,
                                                   const float* d_x, typename V::F* acc,
                                                   size_t acc_stride) {
  typename V::I sums[kT];
  block_sums<V, kStride, kT>(q, x, start, sums);
  for (size_t i = 0; i < kT; ++i) {
    acc[i * acc_stride] =
        add_term<V>(kFresh ? V::zero() : acc[i * acc_stride], sums[i], d_w, d_x[i]);
  }
}

// Block j of packed group g for tokens t .. t + kT - 1: their terms added to acc[t + i][j].
// starts[t][j]: -offset sum(x) of token t's block j.
template <typename V, size_t kT, bool kFresh>
[[gnu::always_inline]] inline void group_block_terms(const typename V::I* q, typename V::F d_w,
                                                     const uint8_t* x_packed, size_t x_stride,
                                                     size_t g, size_t j, size_t t,
                                                     const int32_t (*starts)[kPackGroup],
                                                     typename V::F (*acc)[kPackGroup]) {
  const uint8_t* x[kT];
  int32_t start[kT];
  float d_x[kT];
  for (size_t i = 0; i < kT; ++i) {
    const uint8_t* group = x_packed + (t + i) * x_stride + g * kPackedGroupBytes;
    x[i] = group + packed_dword_at(j, 0);
    start[i] = starts[t + i][j];
    std::memcpy(&d_x[i], group + kPackedScalesAt + j * sizeof(float), sizeof(float));
  }
  add_block_terms<V, 32, kT, kFresh>(q, d_w, x, start, d_x, &acc[t][j], kPackGroup);
}

// Block k of the plain blocks after the groups (tail of them, at tail_at in each row, their sums
// after them) for tokens t .. t + kT - 1: their terms added to tails[t + i].
template <typename V, int kOffsetShift, size_t kT, bool kFresh>
[[gnu::always_inline]] inline void tail_block_terms(const typename V::I* q, typename V::F d_w,
                                                    const uint8_t* x_packed, size_t x_stride,
                                                    size_t tail_at, size_t tail, size_t k, size_t t,
                                                    typename V::F* tails) {
  const uint8_t* x[kT];
  int32_t start[kT];
  float d_x[kT];
  for (size_t i = 0; i < kT; ++i) {
    const uint8_t* row = x_packed + (t + i) * x_stride + tail_at;
    const auto& block = reinterpret_cast<const BlockQ8_0*>(row)[k];
    x[i] = reinterpret_cast<const uint8_t*>(block.qs);
    int32_t sum;
    std::memcpy(&sum, row + tail * sizeof(BlockQ8_0) + k * sizeof(int32_t), sizeof(sum));
    start[i] = -sum * (1 << kOffsetShift);
    d_x[i] = half_to_float(block.d);
  }
  add_block_terms<V, 4, kT, kFresh>(q, d_w, x, start, d_x, &tails[t], 1);
}

// step(i, fresh) for i = 0 .. count - 1, where step adds term i of some accumulators: the first
// with fresh true, so that it starts them (0.0f + term, as a row dot's first) and they need no
// zeroing beforehand; zero() zeroes them when there is no term. Zeroing 16 tokens' accumulators
// took a visible part of a short row's tile (BM_Matmul q4_0_t1_repacked, 64 tokens, GFLOP/s,
// medians of 100 short runs, alternated: 1536 x 576 287-289 -> 303-306, 4864 x 896 304-309 ->
// 314-315, 2048 x 2048 316-320 -> 324-325).
template <typename Zero, typename Step>
[[gnu::always_inline]] inline void start_then_add(size_t count, Zero zero, Step step) {
  if (count == 0) return zero();
  step(0, std::true_type{});
  for (size_t i = 1; i < count; ++i) step(i, std::false_type{});
}

// V::kTiles consecutive runs (run_bytes apart) over one pass of the activations. kTokens > 0:
// that many tokens, known to the compiler (decode's one token: accumulators in registers).
template <typename W, typename V, size_t kTokens>
void repacked_tiles_n(const void* w, size_t run_bytes, const void* x_packed, size_t x_stride,
                      size_t tokens, size_t n, float* y, size_t y_stride) {
  using Column = typename W::Column;
  using I = typename V::I;
  using F = typename V::F;
  const size_t n_tokens = kTokens > 0 ? kTokens : tokens;
  const auto* runs = static_cast<const uint8_t*>(w);
  const auto* xp = static_cast<const uint8_t*>(x_packed);
  const size_t nb = n / kQK8_0, groups = nb / kPackGroup;
  F acc[kMaxTileTokens][kPackGroup];
  // No software prefetch, unlike the AVX2 tiles (which a Zen 3 streamed from DRAM half again as
  // fast with it): on this AVX-512 Zen 4 the hardware prefetcher alone streamed the columns faster
  // (BM_Matmul q4_0_t2_repacked, medians of 3 alternated runs: 32000 x 2048 55 -> 73 GB/s,
  // 151936 x 896 42 -> 58; q8_0 at 151936 x 896 38 -> 55).
  // Block b's operands and scales, the runs' side by side.
  const auto operands = [&](size_t b, I* q, F& d_w) {
    __m256i q8[V::kTiles][kQuantDwords];
    __m256 d8[V::kTiles];
    for (size_t k = 0; k < V::kTiles; ++k) {
      const auto& c = *reinterpret_cast<const Column*>(runs + k * run_bytes + b * sizeof(Column));
      W::operands(c, q8[k]);
      d8[k] = fp16x8(c.d);
    }
    for (size_t m = 0; m < kQuantDwords; ++m) {
      __m256i qm[V::kTiles];
      for (size_t k = 0; k < V::kTiles; ++k) qm[k] = q8[k][m];
      q[m] = V::join(qm);
    }
    d_w = V::join(d8);
  };
  alignas(32) int32_t starts[kMaxTileTokens][kPackGroup];
  const auto group_terms = [&](size_t g, auto fresh) {
    // Each token's -offset sum(x) for the group's 8 blocks, once for all of its columns.
    for (size_t t = 0; t < n_tokens; ++t) {
      const __m256i sums = load_256(xp + t * x_stride + g * kPackedGroupBytes + kPackedSumsAt);
      _mm256_store_si256(
          reinterpret_cast<__m256i*>(starts[t]),
          _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, W::kOffsetShift)));
    }
#pragma GCC unroll 8
    for (size_t j = 0; j < kPackGroup; ++j) {
      I q[kQuantDwords];
      F d_w;
      operands(g * kPackGroup + j, q, d_w);
      size_t t = 0;
      for (; t + kTokenStep <= n_tokens; t += kTokenStep) {
        group_block_terms<V, kTokenStep, decltype(fresh)::value>(q, d_w, xp, x_stride, g, j, t,
                                                                 starts, acc);
      }
      for (; t < n_tokens; ++t) {
        group_block_terms<V, 1, decltype(fresh)::value>(q, d_w, xp, x_stride, g, j, t, starts, acc);
      }
    }
  };
  const auto zero_acc = [&] {
    for (size_t t = 0; t < n_tokens; ++t) {
      for (F& a : acc[t]) a = V::zero();
    }
  };
  start_then_add(groups, zero_acc, group_terms);
  // The remaining blocks, plain BlockQ8_0 after the groups: lane r sums row r's terms in block
  // order from 0.0f, as the row dot's tail does.
  F tails[kMaxTileTokens];
  const size_t tail = nb - groups * kPackGroup, tail_at = groups * kPackedGroupBytes;
  const auto tail_terms = [&](size_t k, auto fresh) {
    I q[kQuantDwords];
    F d_w;
    operands(groups * kPackGroup + k, q, d_w);
    size_t t = 0;
    for (; t + kTokenStep <= n_tokens; t += kTokenStep) {
      tail_block_terms<V, W::kOffsetShift, kTokenStep, decltype(fresh)::value>(
          q, d_w, xp, x_stride, tail_at, tail, k, t, tails);
    }
    for (; t < n_tokens; ++t) {
      tail_block_terms<V, W::kOffsetShift, 1, decltype(fresh)::value>(q, d_w, xp, x_stride, tail_at,
                                                                      tail, k, t, tails);
    }
  };
  const auto zero_tails = [&] {
    for (size_t t = 0; t < n_tokens; ++t) tails[t] = V::zero();
  };
  start_then_add(tail, zero_tails, tail_terms);
  for (size_t t = 0; t < n_tokens; ++t) {
    V::store(y + t * y_stride, V::add(hsum_ps_lanes(acc[t]), tails[t]));
  }
}

// One run (w_stride: the bytes of one original row), or two consecutive ones.
template <typename W, typename V>
void repacked_tiles(const void* w, size_t w_stride, const void* x_packed, size_t x_stride,
                    size_t n_tokens, size_t n, float* y, size_t y_stride) {
  const size_t run_bytes = kR * w_stride;
  if constexpr (V::kTiles == 1) {  // decode; matmul gives pairs 8 tokens or more
    if (n_tokens == 1) {
      return repacked_tiles_n<W, V, 1>(w, run_bytes, x_packed, x_stride, 1, n, y, y_stride);
    }
  }
  repacked_tiles_n<W, V, 0>(w, run_bytes, x_packed, x_stride, n_tokens, n, y, y_stride);
}

template <typename W>
constexpr TileRepacking kRepacking = {repack<W>, repacked_tiles<W, Lanes8>,
                                      dequantize_repacked_row<W>, repacked_tiles<W, Lanes16>};

}  // namespace

void add_avx512_repacking(KernelSet& k) {
  k.repacked[static_cast<size_t>(DType::kQ8_0)] = kRepacking<Q8_0>;
  k.repacked[static_cast<size_t>(DType::kQ4_0)] = kRepacking<Q4_0>;
  k.repacked[static_cast<size_t>(DType::kQ5_0)] = kRepacking<Q5_0>;
}

}  // namespace slm::isa
