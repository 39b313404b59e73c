// AVX2 prefill tiles (KernelSet::gemm_tile): kTileRows weight rows x up to kMaxTileTokens packed
// Q8_0 activation rows, by groups of 8 blocks.
//
// The row dot (kernels/x86/avx2.cpp) multiplies one block pair into 8 int32 lanes and must then
// reduce each block's lanes horizontally (reduce8), for every (row, token): that reduction, not
// the multiplies, is its largest cost. Here each group of 8 blocks is first interleaved so that
// 32-bit lane g of every vector holds 4 quants of block g (low 128 bits: blocks 0-3, high: blocks
// 4-7, each half-block in its own vector): weights once per tile for all its tokens, activations
// once per matmul by pack_q8_0 (which also converts their scales and sums their quants). Then the
// products of a (row, token) pair add up vertically into per-block sums, with no horizontal step
// but one fold of the two 128-bit halves.
//
// Decode (one token) gains nothing from that with the weights as stored: 8 row streams and the
// interleaving cost more than the row dot. So the model loader repacks Q8_0, Q4_0 and Q5_0
// matrices (KernelSet::repacked, TileRepacking): each tile's 8 rows become one run in which every
// group is already interleaved (and the nibbles already split into the operands' order), the same
// size as the rows; repacked_tile_with_q8_0 reads it in one stream, for any number of tokens.
//
// Every element is bit-identical to the row dot (dot_with_q8_0 in avx2.cpp; Q5_0's dot_blocks32
// in avx2_kquant.cpp, which sums its terms the same way) for the same (row, token): the
// block sums are the same integers (formed in another order, exactly), the block terms
// float(sumi) * (d_w * d_x) are formed by the same float operations and added in the same order
// (8 lane accumulators over full groups of 8 blocks, reduced by hsum_ps, plus a sequential sum of
// the remaining blocks).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "kernels/x86/avx2_common.h"
#include "kernels/x86/packed_q8_0.h"

namespace slm::isa {
namespace {

constexpr size_t kR = kTileRows;
constexpr size_t kGroup = kPackGroup;  // blocks per group, 8 as in the row dot

__m256i load_q8_0(const BlockQ8_0& b) { return load_256(b.qs); }

// Interleaves 8 blocks' 32 quant bytes b[0..7] (dwords d0..d7 each): out[m] for m < 4 holds dword
// m of blocks 0-3 in its low 128 bits and dword m + 4 of blocks 0-3 in its high 128 bits; out[4 +
// m] the same for blocks 4-7. Every byte lands in the 32-bit lane of its block (mod 4), so a
// per-lane sum over out[0..3] (out[4..7]) holds the sums of blocks 0-3 (4-7) split over the two
// 128-bit halves.
void interleave8(const __m256i* b, __m256i* out) {
  for (size_t h = 0; h < 2; ++h) {
    const __m256i* q = b + 4 * h;
    const __m256i lo01 = _mm256_unpacklo_epi32(q[0], q[1]),
                  hi01 = _mm256_unpackhi_epi32(q[0], q[1]);
    const __m256i lo23 = _mm256_unpacklo_epi32(q[2], q[3]),
                  hi23 = _mm256_unpackhi_epi32(q[2], q[3]);
    out[4 * h + 0] = _mm256_unpacklo_epi64(lo01, lo23);
    out[4 * h + 1] = _mm256_unpackhi_epi64(lo01, lo23);
    out[4 * h + 2] = _mm256_unpacklo_epi64(hi01, hi23);
    out[4 * h + 3] = _mm256_unpackhi_epi64(hi01, hi23);
  }
}

// Lane sums a (blocks 0-3, split over the halves) and b (blocks 4-7) -> [blocks 0..7]; works on
// int16 and int32 lanes alike through the Add.
template <__m256i (*Add)(__m256i, __m256i)>
__m256i fold_halves(__m256i a, __m256i b) {
  return Add(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Q4_0 weights kept as unsigned nibbles q in [0, 15]: vpmaddubsw takes them as its unsigned
// operand directly, and sum((q - 8) x) = sum(q x) - 8 sum(x), with sum(x) formed once per
// activation block for all rows. A vpmaddubsw pair is at most 2 * 15 * 127 = 3810, so the 8
// pairs of a block that share an int16 lane after the fold (<= 30480) still fit: one vpmaddwd
// per group instead of one per block.
struct Q4_0Weights {
  using Block = BlockQ4_0;
  static constexpr DType kType = DType::kQ4_0;
  static constexpr int32_t kOffset = 8;
  static __m256i load(const Block& b) {  // as int8, q - 8
    return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8));
  }
  struct Operands {
    __m256i q[kGroup];
  };
  static void unpack(const Block* b, Operands& out) {
    __m256i q[kGroup];
    for (size_t j = 0; j < kGroup; ++j) q[j] = nibbles32(b[j].qs);
    interleave8(q, out.q);
  }
  // The repacked form of a row's group (TileRepacking): its 8 scales (fp16), then 4 vectors whose
  // low nibbles are operand 2k and high nibbles operand 2k + 1: the interleaving is done once, at
  // load, and unpacking costs 3 instructions per 2 blocks. Same size as the 8 blocks.
  static constexpr size_t kRepackedBytes = kGroup * sizeof(Block);
  static void repack(const Block* b, uint8_t* dst) {
    for (size_t j = 0; j < kGroup; ++j) std::memcpy(dst + 2 * j, &b[j].d, sizeof(uint16_t));
    Operands ops;
    unpack(b, ops);
    for (size_t k = 0; k < kGroup / 2; ++k) {
      // Nibbles are < 16, so shifting their 16-bit pairs left by 4 keeps each in its byte.
      const __m256i v = _mm256_or_si256(ops.q[2 * k], _mm256_slli_epi16(ops.q[2 * k + 1], 4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16 + 32 * k), v);
    }
  }
  static __m256 unpack_repacked(const uint8_t* src, Operands& out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (size_t k = 0; k < kGroup / 2; ++k) {
      const __m256i v = load_256(src + 16 + 32 * k);
      out.q[2 * k] = _mm256_and_si256(v, m4);
      out.q[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  }
  static const __m256i* quants(const Operands& ops) { return ops.q; }
  // A block's quants from their element-order vector (as unpack reads them).
  static void store(__m256i q, Block& b) { store_nibbles32(q, b.qs); }
  // 8 block sums of q . x.
  static __m256i sums(const Operands& w, const __m256i* x) {
    __m256i p[2];
    for (size_t h = 0; h < 2; ++h) {
      p[h] = _mm256_maddubs_epi16(w.q[4 * h], x[4 * h]);
      for (size_t m = 1; m < 4; ++m) {
        p[h] = _mm256_add_epi16(p[h], _mm256_maddubs_epi16(w.q[4 * h + m], x[4 * h + m]));
      }
    }
    return _mm256_madd_epi16(fold_halves<_mm256_add_epi16>(p[0], p[1]), _mm256_set1_epi16(1));
  }
};

// Q5_0 weights kept as unsigned q in [0, 31] (nibble | 5th bit << 4), with sum((q - 16) x) =
// sum(q x) - 16 sum(x) as for Q4_0. Four vpmaddubsw pairs in an int16 lane reach
// 8 * 31 * 128 = 31744, but not eight: each half is widened before the fold.
struct Q5_0Weights {
  using Block = BlockQ5_0;
  static constexpr DType kType = DType::kQ5_0;
  static constexpr int32_t kOffset = 16;
  static __m256i unsigned_quants(const Block& b) { return q5_0_quants(b.qs, b.qh); }
  static __m256i load(const Block& b) {  // as int8, q - 16
    return _mm256_sub_epi8(unsigned_quants(b), _mm256_set1_epi8(16));
  }
  struct Operands {
    __m256i q[kGroup];
  };
  static void unpack(const Block* b, Operands& out) {
    __m256i q[kGroup];
    for (size_t j = 0; j < kGroup; ++j) q[j] = unsigned_quants(b[j]);
    interleave8(q, out.q);
  }
  // The repacked form of a row's group (TileRepacking): its 8 scales (fp16), Q4_0's 4 vectors of
  // paired low nibbles, then one vector whose bit m of byte i is the 5th bit of operand m's byte
  // i. Same size as the 8 blocks (16 + 128 + 32 = 8 * 22 bytes).
  static constexpr size_t kRepackedBytes = kGroup * sizeof(Block);
  static constexpr size_t kHighBitsAt = 16 + 128;
  static void repack(const Block* b, uint8_t* dst) {
    for (size_t j = 0; j < kGroup; ++j) std::memcpy(dst + 2 * j, &b[j].d, sizeof(uint16_t));
    Operands ops;
    unpack(b, ops);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i high = _mm256_setzero_si256();
    for (size_t m = 0; m < kGroup; ++m) {
      // Bit 4 of each byte down to bit m, one operand at a time (shifts by a byte stay in it).
      const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(ops.q[m], 4), _mm256_set1_epi8(1));
      high = _mm256_or_si256(high, _mm256_sll_epi16(bit, _mm_cvtsi32_si128(static_cast<int>(m))));
    }
    for (size_t k = 0; k < kGroup / 2; ++k) {
      const __m256i lo = _mm256_and_si256(ops.q[2 * k], m4);
      const __m256i hi = _mm256_and_si256(ops.q[2 * k + 1], m4);
      const __m256i v = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16 + 32 * k), v);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + kHighBitsAt), high);
  }
  static __m256 unpack_repacked(const uint8_t* src, Operands& out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i high = load_256(src + kHighBitsAt);
    for (size_t k = 0; k < kGroup / 2; ++k) {
      const __m256i v = load_256(src + 16 + 32 * k);
      out.q[2 * k] = _mm256_or_si256(_mm256_and_si256(v, m4), fifth_bits(high, 2 * k));
      out.q[2 * k + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                         fifth_bits(high, 2 * k + 1));
    }
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  }
  // Bit m of each byte of `high` as bit 4 (0x10), every other bit clear.
  [[gnu::always_inline]] static __m256i fifth_bits(__m256i high, size_t m) {
    const __m256i moved = m <= 4 ? _mm256_slli_epi16(high, static_cast<int>(4 - m))
                                 : _mm256_srli_epi16(high, static_cast<int>(m - 4));
    return _mm256_and_si256(moved, _mm256_set1_epi8(0x10));
  }
  static const __m256i* quants(const Operands& ops) { return ops.q; }
  // A block's quants from their element-order vector (as unpack reads them).
  static void store(__m256i q, Block& b) { store_q5_0_quants(q, b.qs, b.qh); }
  // 8 block sums of q . x.
  static __m256i sums(const Operands& w, const __m256i* x) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s[2];
    for (size_t h = 0; h < 2; ++h) {
      __m256i p = _mm256_maddubs_epi16(w.q[4 * h], x[4 * h]);
      for (size_t m = 1; m < 4; ++m) {
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w.q[4 * h + m], x[4 * h + m]));
      }
      s[h] = _mm256_madd_epi16(p, ones);
    }
    return fold_halves<_mm256_add_epi32>(s[0], s[1]);
  }
};

// Q8_0 weights kept as |w| (the unsigned operand) and w (whose signs move onto x). A vpmaddubsw
// pair reaches 2 * 128 * 127, so each product vector is widened by vpmaddwd before adding.
struct Q8_0Weights {
  using Block = BlockQ8_0;
  static constexpr DType kType = DType::kQ8_0;
  static constexpr int32_t kOffset = 0;
  static __m256i load(const Block& b) { return load_q8_0(b); }
  struct Operands {
    __m256i abs[kGroup], w[kGroup];
  };
  static void unpack(const Block* b, Operands& out) {
    __m256i q[kGroup];
    for (size_t j = 0; j < kGroup; ++j) q[j] = load_q8_0(b[j]);
    interleave8(q, out.w);
    for (size_t m = 0; m < kGroup; ++m) out.abs[m] = _mm256_sign_epi8(out.w[m], out.w[m]);
  }
  // The repacked form of a row's group (TileRepacking): its 8 scales (fp16), then the 8 interleaved
  // quant vectors. Same size as the 8 blocks.
  static constexpr size_t kRepackedBytes = kGroup * sizeof(Block);
  static void repack(const Block* b, uint8_t* dst) {
    for (size_t j = 0; j < kGroup; ++j) std::memcpy(dst + 2 * j, &b[j].d, sizeof(uint16_t));
    Operands ops;
    unpack(b, ops);
    for (size_t m = 0; m < kGroup; ++m) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16 + 32 * m), ops.w[m]);
    }
  }
  static __m256 unpack_repacked(const uint8_t* src, Operands& out) {
    for (size_t m = 0; m < kGroup; ++m) {
      out.w[m] = load_256(src + 16 + 32 * m);
      out.abs[m] = _mm256_sign_epi8(out.w[m], out.w[m]);
    }
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  }
  static const __m256i* quants(const Operands& ops) { return ops.w; }
  static void store(__m256i q, Block& b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs), q);
  }
  static __m256i sums(const Operands& w, const __m256i* x) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s[2];
    for (size_t h = 0; h < 2; ++h) {
      s[h] = _mm256_setzero_si256();
      for (size_t m = 4 * h; m < 4 * h + 4; ++m) {
        const __m256i p = _mm256_maddubs_epi16(w.abs[m], _mm256_sign_epi8(x[m], w.w[m]));
        s[h] = _mm256_add_epi32(s[h], _mm256_madd_epi16(p, ones));
      }
    }
    return fold_halves<_mm256_add_epi32>(s[0], s[1]);
  }
};

// 8 block sums of an interleaved group of activation quants.
__m256i quant_sums(const __m256i* x) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  __m256i p[2];
  for (size_t h = 0; h < 2; ++h) {
    p[h] = _mm256_maddubs_epi16(ones8, x[4 * h]);
    for (size_t m = 1; m < 4; ++m) {
      p[h] = _mm256_add_epi16(p[h], _mm256_maddubs_epi16(ones8, x[4 * h + m]));
    }
  }
  return _mm256_madd_epi16(fold_halves<_mm256_add_epi16>(p[0], p[1]), _mm256_set1_epi16(1));
}

// Into the layout of packed_q8_0.h.
void pack_q8_0(const void* x_row, size_t n, void* dst) {
  const auto* x = static_cast<const BlockQ8_0*>(x_row);
  auto* out = static_cast<uint8_t*>(dst);
  const size_t nb = n / kQK8_0;
  size_t i = 0;
  for (; i + kGroup <= nb; i += kGroup, out += kPackedGroupBytes) {
    __m256i q[kGroup], xq[kGroup];
    for (size_t j = 0; j < kGroup; ++j) q[j] = load_q8_0(x[i + j]);
    interleave8(q, xq);
    for (size_t m = 0; m < kGroup; ++m) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + m * sizeof(__m256i)), xq[m]);
    }
    _mm256_storeu_ps(reinterpret_cast<float*>(out + kPackedScalesAt),
                     fp16_fields8(reinterpret_cast<const uint8_t*>(&x[i]), sizeof(BlockQ8_0)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kPackedSumsAt), quant_sums(xq));
  }
  std::memcpy(out, &x[i], (nb - i) * sizeof(BlockQ8_0));
  out += (nb - i) * sizeof(BlockQ8_0);
  for (; i < nb; ++i, out += sizeof(int32_t)) {
    const int32_t sum = hsum_epi32(dot_u8x32(_mm256_set1_epi8(1), load_q8_0(x[i])));
    std::memcpy(out, &sum, sizeof(sum));
  }
}

// One token's packed group of activations, as every row's group terms use it.
template <typename Weights>
struct XGroup {
  __m256i q[kGroup];
  __m256 scales;
  __m256i offsets;  // kOffset * sum(x) per block

  explicit XGroup(const uint8_t* group) {
    for (size_t m = 0; m < kGroup; ++m) q[m] = load_256(group + m * sizeof(__m256i));
    scales = _mm256_loadu_ps(reinterpret_cast<const float*>(group + kPackedScalesAt));
    offsets = _mm256_setzero_si256();
    if constexpr (Weights::kOffset != 0) {
      offsets =
          _mm256_mullo_epi32(load_256(group + kPackedSumsAt), _mm256_set1_epi32(Weights::kOffset));
    }
  }
  // One block of one token in all 8 lanes, for a group whose lanes are 8 weight rows' blocks at
  // its position (a repacked tail): lane l of operand m takes the block's dword m (low half) and
  // m + 4 (high half), which meet lane l's weight bytes after interleave8.
  explicit XGroup(const BlockQ8_0& b) {
    const __m256i v = load_q8_0(b);
    q[0] = q[4] = _mm256_shuffle_epi32(v, 0x00);
    q[1] = q[5] = _mm256_shuffle_epi32(v, 0x55);
    q[2] = q[6] = _mm256_shuffle_epi32(v, 0xAA);
    q[3] = q[7] = _mm256_shuffle_epi32(v, 0xFF);
    scales = _mm256_set1_ps(half_to_float(b.d));
    offsets = _mm256_setzero_si256();
    if constexpr (Weights::kOffset != 0) {
      const int32_t sum = hsum_epi32(dot_u8x32(_mm256_set1_epi8(1), v));
      offsets = _mm256_set1_epi32(Weights::kOffset * sum);
    }
  }
  // acc + the 8 block terms float(sumi) * (d_w * d_x) of a weight row's group against this one.
  __m256 add_terms(__m256 acc, const typename Weights::Operands& w, __m256 w_scales) const {
    const __m256i sumi = _mm256_sub_epi32(Weights::sums(w, q), offsets);
    const __m256 dd = _mm256_mul_ps(w_scales, scales);
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), dd));
  }
};

// The terms of the blocks after the last full group, summed as the row dot sums them.
template <typename Weights>
float tail_terms(const typename Weights::Block* w, const BlockQ8_0* x, size_t count) {
  float tail = 0.0f;
  for (size_t i = 0; i < count; ++i) {
    const int32_t sumi = hsum_epi32(dot_i8x32(Weights::load(w[i]), load_q8_0(x[i])));
    tail += static_cast<float>(sumi) * (half_to_float(w[i].d) * half_to_float(x[i].d));
  }
  return tail;
}

template <typename Weights>
void tile_with_q8_0(const void* w, size_t w_stride, const void* x_packed, size_t x_stride,
                    size_t n_tokens, size_t n, float* y, size_t y_stride) {
  using WBlock = typename Weights::Block;
  const WBlock* wr[kR];
  for (size_t r = 0; r < kR; ++r) {
    wr[r] = reinterpret_cast<const WBlock*>(static_cast<const uint8_t*>(w) + r * w_stride);
  }
  const auto* xp = static_cast<const uint8_t*>(x_packed);
  const size_t nb = n / kQK8_0, groups = nb / kGroup;
  __m256 acc[kMaxTileTokens][kR];
  zero_accumulators(acc, n_tokens);
  for (size_t g = 0; g < groups; ++g) {
    typename Weights::Operands ops[kR];
    __m256 w_scales[kR];
    for (size_t r = 0; r < kR; ++r) {
      Weights::unpack(&wr[r][g * kGroup], ops[r]);
      w_scales[r] =
          fp16_fields8(reinterpret_cast<const uint8_t*>(&wr[r][g * kGroup]), sizeof(WBlock));
    }
    for (size_t t = 0; t < n_tokens; ++t) {
      const XGroup<Weights> x(xp + t * x_stride + g * kPackedGroupBytes);
      for (size_t r = 0; r < kR; ++r) acc[t][r] = x.add_terms(acc[t][r], ops[r], w_scales[r]);
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) {
    const auto* x_tail =
        reinterpret_cast<const BlockQ8_0*>(xp + t * x_stride + groups * kPackedGroupBytes);
    for (size_t r = 0; r < kR; ++r) {
      y[t * y_stride + r] =
          hsum_ps(acc[t][r]) + tail_terms<Weights>(wr[r] + groups * kGroup, x_tail, nb % kGroup);
    }
  }
}

// A repacked run: for each group of 8 blocks, the kR rows' groups in Weights' repacked form one
// after another; then each remaining block position (nb % 8 of them) as one more group made of
// that block of every row, so that its sums come out one row per lane. One stream for the whole
// tile, which decode reads once.
static_assert(kR == kGroup, "a tail group holds one block of each row of the tile");
template <typename Weights>
void repack_tile(const void* rows, size_t n, void* dst) {
  using WBlock = typename Weights::Block;
  const auto* src = static_cast<const uint8_t*>(rows);
  auto* out = static_cast<uint8_t*>(dst);
  const size_t nb = n / kQK8_0, groups = nb / kGroup, row_bytes = nb * sizeof(WBlock);
  const auto row = [&](size_t r) { return reinterpret_cast<const WBlock*>(src + r * row_bytes); };
  for (size_t g = 0; g < groups; ++g) {
    for (size_t r = 0; r < kR; ++r, out += Weights::kRepackedBytes) {
      Weights::repack(row(r) + g * kGroup, out);
    }
  }
  for (size_t i = groups * kGroup; i < nb; ++i, out += Weights::kRepackedBytes) {
    WBlock column[kR];
    for (size_t r = 0; r < kR; ++r) column[r] = row(r)[i];
    Weights::repack(column, out);
  }
}

// tile_with_q8_0 over a repacked tile (w_stride: the bytes of one original row), with the same
// float operations in the same order, so the same results.
// kTokens > 0: that many tokens, known to the compiler (decode's one token: no loop over tokens,
// accumulators in registers; 14.8 -> 21.6 GB/s for Q4_0 at 2048 x 5632 on one thread).
template <typename Weights, size_t kTokens>
void repacked_tile_n(const void* w, const void* x_packed, size_t x_stride, size_t tokens, size_t n,
                     float* y, size_t y_stride) {
  const size_t n_tokens = kTokens > 0 ? kTokens : tokens;
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* xp = static_cast<const uint8_t*>(x_packed);
  const size_t nb = n / kQK8_0, groups = nb / kGroup;
  __m256 acc[kMaxTileTokens][kR];
  zero_accumulators(acc, n_tokens);
  for (size_t g = 0; g < groups; ++g) {
    for (size_t r = 0; r < kR; ++r, wp += Weights::kRepackedBytes) {
      // The run streams from DRAM in decode (BM_Matmul q4_0_repacked at 32000 x 2048 on 2
      // threads: 16 GB/s without asking ahead, 25 with).
      prefetch_ahead<Weights::kRepackedBytes>(wp);
      typename Weights::Operands ops;
      const __m256 w_scales = Weights::unpack_repacked(wp, ops);
      for (size_t t = 0; t < n_tokens; ++t) {
        const XGroup<Weights> x(xp + t * x_stride + g * kPackedGroupBytes);
        acc[t][r] = x.add_terms(acc[t][r], ops, w_scales);
      }
    }
  }
  // The remaining blocks: lane r sums row r's terms in block order from 0.0f, as the row dot's
  // tail does.
  __m256 tails[kMaxTileTokens];
  for (size_t t = 0; t < n_tokens; ++t) tails[t] = _mm256_setzero_ps();
  for (size_t i = groups * kGroup; i < nb; ++i, wp += Weights::kRepackedBytes) {
    prefetch_ahead<Weights::kRepackedBytes>(wp);
    typename Weights::Operands ops;
    const __m256 w_scales = Weights::unpack_repacked(wp, ops);
    for (size_t t = 0; t < n_tokens; ++t) {
      const auto* x_tail =
          reinterpret_cast<const BlockQ8_0*>(xp + t * x_stride + groups * kPackedGroupBytes);
      const XGroup<Weights> x(x_tail[i - groups * kGroup]);
      tails[t] = x.add_terms(tails[t], ops, w_scales);
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) {
    alignas(32) float tail[kR];
    _mm256_store_ps(tail, tails[t]);
    for (size_t r = 0; r < kR; ++r) y[t * y_stride + r] = hsum_ps(acc[t][r]) + tail[r];
  }
}

// The 8 original blocks of a repacked group (interleave8 is its own inverse).
template <typename Weights>
void unrepack(const uint8_t* src, typename Weights::Block* b) {
  typename Weights::Operands ops;
  Weights::unpack_repacked(src, ops);
  __m256i q[kGroup];
  interleave8(Weights::quants(ops), q);
  for (size_t j = 0; j < kGroup; ++j) {
    std::memcpy(&b[j].d, src + 2 * j, sizeof(uint16_t));
    Weights::store(q[j], b[j]);
  }
}

// Row r of a repacked run, dequantized: each group's original blocks restored, then row r's
// block of each tail group.
template <typename Weights>
void dequantize_repacked_row(const void* run, size_t r, size_t n, float* y) {
  using WBlock = typename Weights::Block;
  const auto* p = static_cast<const uint8_t*>(run);
  const size_t nb = n / kQK8_0, groups = nb / kGroup, tail = nb % kGroup;
  WBlock blocks[kGroup];
  for (size_t g = 0; g < groups; ++g, y += kGroup * kQK8_0) {
    unrepack<Weights>(p + (g * kR + r) * Weights::kRepackedBytes, blocks);
    ref::dequantize_row(Weights::kType, blocks, y, kGroup * kQK8_0);
  }
  for (size_t i = 0; i < tail; ++i, y += kQK8_0) {
    unrepack<Weights>(p + (groups * kR + i) * Weights::kRepackedBytes, blocks);  // one per row
    ref::dequantize_row(Weights::kType, &blocks[r], y, kQK8_0);
  }
}

template <typename Weights>
void repacked_tile_with_q8_0(const void* w, size_t /*w_stride*/, const void* x_packed,
                             size_t x_stride, size_t n_tokens, size_t n, float* y,
                             size_t y_stride) {
  if (n_tokens == 1) return repacked_tile_n<Weights, 1>(w, x_packed, x_stride, 1, n, y, y_stride);
  repacked_tile_n<Weights, 0>(w, x_packed, x_stride, n_tokens, n, y, y_stride);
}

template <typename Weights>
constexpr TileRepacking kRepacking = {repack_tile<Weights>, repacked_tile_with_q8_0<Weights>,
                                      dequantize_repacked_row<Weights>};

}  // namespace

void add_avx2_gemm_tiles(KernelSet& k) {
  k.pack[static_cast<size_t>(DType::kQ8_0)] = pack_q8_0;
  k.gemm_tile[static_cast<size_t>(DType::kQ8_0)] = tile_with_q8_0<Q8_0Weights>;
  k.gemm_tile[static_cast<size_t>(DType::kQ4_0)] = tile_with_q8_0<Q4_0Weights>;
  k.repacked[static_cast<size_t>(DType::kQ8_0)] = kRepacking<Q8_0Weights>;
  k.repacked[static_cast<size_t>(DType::kQ4_0)] = kRepacking<Q4_0Weights>;
  k.gemm_tile[static_cast<size_t>(DType::kQ5_0)] = tile_with_q8_0<Q5_0Weights>;
  k.repacked[static_cast<size_t>(DType::kQ5_0)] = kRepacking<Q5_0Weights>;
}

}  // namespace slm::isa
