// Prefill tiles (KernelSet::gemm_tile, on activations packed by KernelSet::pack where the set
// has it: Q8_0 on x86 and NEON, and F16 on AVX-512; else as quantized) and the matmul that uses them. Contract
// (kernels/dispatch.h): each tile element is bit-identical to the same set's dot for that (row,
// token), so it agrees with the scalar reference as the dots do
// (|tile - ref| <= 1e-6 * sum_i |w_i x_i|), and a matmul gives the same Y with or without tiles,
// for any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <numeric>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "tests/kernel_test_util.h"

namespace slm {

namespace {

// Block counts below, at and above one group of 8 blocks, with and without a remainder (the
// K-quant dots also add their super-block terms in batches of 8).
constexpr size_t kBlockCounts[] = {1, 3, 7, 8, 9, 16, 33, 64};
// Q8_0, Q4_0, Q5_0 and the K-quants have tiles on x86 and NEON, F16 and BF16 on x86; Q4_1 has
// none anywhere (the fallback: one dot per element).
constexpr DType kWeightTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ2_K,
                                  DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K,
                                  DType::kQ4_1, DType::kF16,  DType::kBF16};

// Row lengths for nb "blocks" of wt: float types (one element per block) take 37 elements per
// block, so the lengths cross vector widths and the float tiles' 512-element passes.
size_t row_length(DType wt, size_t nb) {
  return traits(wt).block_elems == 1 ? nb * 37 : nb * traits(wt).block_elems;
}
constexpr DType kKQuants[] = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// `rows` rows of n random values (normal, scaled per row by 10^[-2, 2]) quantized to `type`.
std::vector<uint8_t> random_rows(std::mt19937& rng, DType type, size_t rows, size_t n) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-2.0f, 2.0f);
  const size_t rb = row_bytes(type, n);
  std::vector<uint8_t> out(rows * rb);
  std::vector<float> row(n);
  for (size_t r = 0; r < rows; ++r) {
    const float scale = std::pow(10.0f, exponent(rng));
    for (float& v : row) v = scale * nd(rng);
    ref::quantize_row(type, row.data(), out.data() + r * rb, n);
  }
  return out;
}

class GemmTiles : public testing::TestWithParam<Isa> {
 protected:
  const KernelSet& k() const { return kernel_set(GetParam()); }
  // The set's tile for `wt`; skips the test where the set has none.
  GemmTileFn tile_for(DType wt) const { return k().gemm_tile[static_cast<size_t>(wt)]; }

  // Tiles of kTileRows rows of w against `tokens` rows of x (in the weight type's activation
  // type), written into a Y wider than the tile, checked element by element against the set's
  // dot and the reference. kRepackedTiles: the set's repacked tile over w as its repack
  // rewrites it, or with `pair` its tile_pair over the first 2 · kTileRows rows.
  void expect_tile_equals_dots(DType wt, const std::vector<uint8_t>& w,
                               const std::vector<uint8_t>& x, size_t tokens, size_t n,
                               WeightLayout layout = WeightLayout::kRows, bool pair = false) const {
    const DType at = ref::vec_dot_type(wt);
    const size_t w_stride = row_bytes(wt, n), x_stride = row_bytes(at, n);
    const size_t rows = pair ? 2 * kTileRows : kTileRows;
    GemmTileFn tile = tile_for(wt);
    std::vector<uint8_t> tile_w(w.begin(), w.begin() + long(rows * w_stride));
    if (layout == WeightLayout::kRepackedTiles) {
      const TileRepacking& repacking = k().repacked[static_cast<size_t>(wt)];
      tile = pair ? repacking.tile_pair : repacking.tile;
      tile_w.push_back(0xA5);  // a canary after the runs: repacking keeps the size
      const size_t run_bytes = kTileRows * w_stride;
      for (size_t run = 0; run < rows / kTileRows; ++run) {
        repacking.repack(w.data() + run * run_bytes, n, tile_w.data() + run * run_bytes);
        // Each row reads back as the original row dequantizes.
        std::vector<float> got(n), want(n);
        for (size_t r = 0; r < kTileRows; ++r) {
          repacking.dequantize_row(tile_w.data() + run * run_bytes, r, n, got.data());
          ref::dequantize_row(wt, w.data() + run * run_bytes + r * w_stride, want.data(), n);
          EXPECT_EQ(got, want) << dtype_name(wt) << " n=" << n << " row " << r;
        }
      }
      EXPECT_EQ(tile_w.back(), 0xA5) << "repack wrote past its rows";
    }
    std::vector<uint8_t> tile_x = x;  // as quantized, or packed
    size_t tile_x_stride = x_stride;
    if (k().pack[static_cast<size_t>(at)] != nullptr) {
      tile_x_stride = packed_row_bytes(at, n);
      tile_x.assign(tokens * tile_x_stride, 0);
      for (size_t t = 0; t < tokens; ++t) {
        k().pack[static_cast<size_t>(at)](x.data() + t * x_stride, n,
                                          tile_x.data() + t * tile_x_stride);
      }
    }
    const size_t y_stride = rows + 3;
    std::vector<float> y(tokens * y_stride, -1.0f);
    tile(tile_w.data(), w_stride, tile_x.data(), tile_x_stride, tokens, n, y.data(), y_stride);
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t r = 0; r < y_stride; ++r) {
        const float got = y[t * y_stride + r];
        if (r >= rows) {
          EXPECT_EQ(got, -1.0f) << "wrote outside the tile at t=" << t << " r=" << r;
          continue;
        }
        const void* wr = w.data() + r * w_stride;
        const void* xt = x.data() + t * x_stride;
        const std::string where = std::string(dtype_name(wt)) + " n=" + std::to_string(n) +
                                  " tokens=" + std::to_string(tokens) + " r=" + std::to_string(r) +
                                  " t=" + std::to_string(t) + " isa=" + std::string(k().name) +
                                  (pair ? " (pair)" : "");
        EXPECT_EQ(got, k().dot(wt, wr, xt, n)) << where;
        EXPECT_NEAR(got, ref::vec_dot(wt, wr, xt, n), 1e-6 * test::abs_dot(wt, wr, xt, n) + 1e-30)
            << where;
      }
    }
  }
};

TEST_P(GemmTiles, TilesEqualDotsBitForBit) {
  std::mt19937 rng(77);
  size_t tested = 0;
  for (DType wt : kWeightTypes) {
    if (tile_for(wt) == nullptr) continue;
    const DType at = ref::vec_dot_type(wt);
    ASSERT_TRUE(at == DType::kQ8_0 || at == DType::kQ8_K || at == DType::kF16 || at == DType::kF32)
        << dtype_name(wt);
    if (at == DType::kQ8_0) {
      ASSERT_NE(k().pack[static_cast<size_t>(at)], nullptr) << "a set with Q8_0 tiles packs";
    }
    for (size_t nb : kBlockCounts) {
      const size_t n = row_length(wt, nb);
      const auto w = random_rows(rng, wt, kTileRows, n);
      for (size_t tokens : {size_t{1}, size_t{2}, size_t{5}, kMaxTileTokens}) {
        expect_tile_equals_dots(wt, w, random_rows(rng, at, tokens, n), tokens, n);
        ++tested;
      }
    }
  }
  if (tested == 0) GTEST_SKIP() << k().name << " has no GEMM tiles (matmul uses its dots)";
}

// Weights repacked at load (KernelSet::repacked) give every (row, token) of the repacked tile,
// and of the tile over two runs where the set has one, bit-identically the set's dot of the
// original row, from one token (decode) up, and each row back as the original row dequantizes.
TEST_P(GemmTiles, RepackedTilesEqualDotsBitForBit) {
  std::mt19937 rng(78);
  size_t tested = 0;
  for (const TileRepacking& r : k().repacked) {
    const bool any = r.repack || r.tile || r.dequantize_row;
    ASSERT_EQ(any, r.repack && r.tile && r.dequantize_row) << "all three functions, or none";
  }
  for (DType wt : kWeightTypes) {
    if (k().repacked[static_cast<size_t>(wt)].repack == nullptr) continue;
    const DType at = ref::vec_dot_type(wt);
    for (size_t nb : kBlockCounts) {
      const size_t n = nb * traits(wt).block_elems;
      const auto w = random_rows(rng, wt, 2 * kTileRows, n);
      for (size_t tokens : {size_t{1}, size_t{2}, size_t{5}, kMaxTileTokens}) {
        const auto x = random_rows(rng, at, tokens, n);
        expect_tile_equals_dots(wt, w, x, tokens, n, WeightLayout::kRepackedTiles);
        if (k().repacked[static_cast<size_t>(wt)].tile_pair != nullptr) {
          expect_tile_equals_dots(wt, w, x, tokens, n, WeightLayout::kRepackedTiles, true);
        }
        ++tested;
      }
    }
  }
  if (tested == 0) GTEST_SKIP() << k().name << " repacks no weight type";
}

// Unit scales, extreme quants (Q8_0 +-127, Q4_0 nibbles 0 and 15, Q5_0 quants 0 and 31 against
// activations +-127): every sum is an exact integer, so tile, dot and reference are equal.
TEST_P(GemmTiles, ExtremeQuantsAreExact) {
  if (tile_for(DType::kQ8_0) == nullptr || tile_for(DType::kQ4_0) == nullptr ||
      tile_for(DType::kQ5_0) == nullptr) {
    GTEST_SKIP() << k().name << " has no Q8_0/Q4_0/Q5_0 tiles";
  }
  constexpr uint16_t kFp16One = 0x3C00;
  constexpr size_t nb = 19, n = nb * kQK8_0, tokens = 3;
  std::vector<BlockQ8_0> x(tokens * nb), w8(2 * kTileRows * nb);  // 2 runs for tile_pair
  std::vector<BlockQ4_0> w4(2 * kTileRows * nb);
  std::vector<BlockQ5_0> w5(2 * kTileRows * nb);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i].d = kFp16One;
    for (size_t j = 0; j < kQK8_0; ++j)
      x[i].qs[j] = static_cast<int8_t>((i + j) % 3 == 0 ? -127 : 127);
  }
  for (size_t i = 0; i < w8.size(); ++i) {
    w8[i].d = w4[i].d = kFp16One;
    for (size_t j = 0; j < kQK8_0; ++j) w8[i].qs[j] = static_cast<int8_t>(i % 2 == 0 ? 127 : -127);
    for (size_t j = 0; j < kQK4_0 / 2; ++j)
      w4[i].qs[j] = static_cast<uint8_t>(i % 2 == 0 ? 0xF0 : 0x0F);
    w5[i].d = kFp16One;
    const uint8_t q5 = i % 2 == 0 ? 0xFF : 0x00;  // every quant 31 (+15), or 0 (-16)
    std::memset(w5[i].qh, q5, sizeof(w5[i].qh));
    std::memset(w5[i].qs, q5, sizeof(w5[i].qs));
  }
  const auto bytes = [](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(v[0]));
  };
  expect_tile_equals_dots(DType::kQ8_0, bytes(w8), bytes(x), tokens, n);
  expect_tile_equals_dots(DType::kQ4_0, bytes(w4), bytes(x), tokens, n);
  expect_tile_equals_dots(DType::kQ5_0, bytes(w5), bytes(x), tokens, n);
  const std::pair<DType, std::vector<uint8_t>> weights[] = {
      {DType::kQ8_0, bytes(w8)}, {DType::kQ4_0, bytes(w4)}, {DType::kQ5_0, bytes(w5)}};
  for (const auto& [type, w] : weights) {
    const TileRepacking& repacking = k().repacked[static_cast<size_t>(type)];
    if (repacking.repack != nullptr) {
      expect_tile_equals_dots(type, w, bytes(x), tokens, n, WeightLayout::kRepackedTiles);
    }
    if (repacking.tile_pair != nullptr) {
      expect_tile_equals_dots(type, w, bytes(x), tokens, n, WeightLayout::kRepackedTiles, true);
    }
  }
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t r = 0; r < kTileRows; ++r) {
      EXPECT_EQ(k().dot(DType::kQ8_0, &w8[r * nb], &x[t * nb], n),
                ref::vec_dot(DType::kQ8_0, &w8[r * nb], &x[t * nb], n));
      EXPECT_EQ(k().dot(DType::kQ4_0, &w4[r * nb], &x[t * nb], n),
                ref::vec_dot(DType::kQ4_0, &w4[r * nb], &x[t * nb], n));
      EXPECT_EQ(k().dot(DType::kQ5_0, &w5[r * nb], &x[t * nb], n),
                ref::vec_dot(DType::kQ5_0, &w5[r * nb], &x[t * nb], n));
    }
  }
}

// K-quant blocks with every quant, scale and min at its largest (all bits set; Q3_K's and Q6_K's
// signed scales alternate between their extremes) and unit d / dmin, against Q8_K activations of
// -128 and 127 (their largest magnitudes; bsums consistent): the widest integer sums the tiles'
// vpmaddubsw / vpmaddwd must hold without saturating.
TEST_P(GemmTiles, KQuantExtremeQuantsEqualDots) {
  constexpr uint16_t kFp16One = 0x3C00;
  constexpr size_t nb = 9, n = nb * kQK_K, tokens = 3;
  std::vector<BlockQ8_K> x(tokens * nb);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i].d = 1.0f;
    for (size_t j = 0; j < kQK_K; ++j) {
      x[i].qs[j] = static_cast<int8_t>((i + j / 3) % 2 == 0 ? -128 : 127);
    }
    for (size_t g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (size_t l = 0; l < 16; ++l) sum += x[i].qs[16 * g + l];
      x[i].bsums[g] = static_cast<int16_t>(sum);
    }
  }
  const auto* xp = reinterpret_cast<const uint8_t*>(x.data());
  const std::vector<uint8_t> x_bytes(xp, xp + x.size() * sizeof(BlockQ8_K));
  // kTileRows rows of nb extreme blocks of type B, as bytes.
  const auto fill = [&]<typename B>(B*, std::vector<uint8_t>& bytes) {
    std::vector<B> blocks(kTileRows * nb);
    std::memset(blocks.data(), 0xFF, blocks.size() * sizeof(B));
    for (size_t i = 0; i < blocks.size(); ++i) {
      blocks[i].d = kFp16One;
      if constexpr (requires(B b) { b.dmin; }) blocks[i].dmin = kFp16One;
      if constexpr (std::is_same_v<B, BlockQ6_K>) {
        for (size_t g = 0; g < kQK_K / 16; ++g)
          blocks[i].scales[g] = static_cast<int8_t>((i + g) % 2 ? 127 : -128);
      }
      if constexpr (std::is_same_v<B, BlockQ3_K>) {  // all-ones 6-bit scale is 63 - 32 = 31;
        if (i % 2 == 0) std::memset(blocks[i].scales, 0, sizeof(blocks[i].scales));  // or -32
      }
    }
    const auto* p = reinterpret_cast<const uint8_t*>(blocks.data());
    bytes.assign(p, p + blocks.size() * sizeof(B));
  };
  size_t tested = 0;
  for (DType wt : kKQuants) {
    if (tile_for(wt) == nullptr) continue;
    std::vector<uint8_t> w;
    switch (wt) {
      case DType::kQ2_K:
        fill(static_cast<BlockQ2_K*>(nullptr), w);
        break;
      case DType::kQ3_K:
        fill(static_cast<BlockQ3_K*>(nullptr), w);
        break;
      case DType::kQ4_K:
        fill(static_cast<BlockQ4_K*>(nullptr), w);
        break;
      case DType::kQ5_K:
        fill(static_cast<BlockQ5_K*>(nullptr), w);
        break;
      default:
        fill(static_cast<BlockQ6_K*>(nullptr), w);
        break;
    }
    expect_tile_equals_dots(wt, w, x_bytes, tokens, n);
    if (k().repacked[static_cast<size_t>(wt)].repack != nullptr) {
      expect_tile_equals_dots(wt, w, x_bytes, tokens, n, WeightLayout::kRepackedTiles);
      expect_tile_equals_dots(wt, w, x_bytes, 1, n, WeightLayout::kRepackedTiles);  // decode's
    }
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << k().name << " has no K-quant tiles";
}

INSTANTIATE_TEST_SUITE_P(Isa, GemmTiles, testing::ValuesIn(available_isas()), test::isa_label);

// matmul of `rows` random rows of nb blocks of wt against 1, 2, 5 and more than one tile's
// tokens, on 1..3 threads, with the weights in `layout` (repacked as the model loader does):
// every element equals the dispatched dot of its original row and token, bit for bit.
void expect_matmul_equals_dots(std::mt19937& rng, DType wt, size_t rows, size_t nb,
                               WeightLayout layout) {
  const KernelSet& k = active_kernels();
  const DType at = ref::vec_dot_type(wt);
  const size_t n = row_length(wt, nb), rb = row_bytes(wt, n);
  const auto w = random_rows(rng, wt, rows, n);
  std::vector<uint8_t> w_laid_out = w;
  if (layout == WeightLayout::kRepackedTiles) {
    for (size_t r = 0; r < rows; r += kTileRows) {
      k.repacked[static_cast<size_t>(wt)].repack(w.data() + r * rb, n, w_laid_out.data() + r * rb);
    }
  }
  for (size_t tokens : {size_t{1}, size_t{2}, size_t{5}, kMaxTileTokens + 3}) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(tokens * n);
    for (float& v : x) v = nd(rng);
    std::vector<uint8_t> act(row_bytes(at, n) * tokens);
    for (size_t t = 0; t < tokens; ++t) {
      ref::quantize_row(at, x.data() + t * n, act.data() + t * row_bytes(at, n), n);
    }
    std::vector<uint8_t> scratch(matmul_scratch_bytes(wt, n, tokens));
    for (int threads : {1, 2, 3}) {
      std::vector<float> y(tokens * (rows + 1), -1.0f);
      matmul(wt, w_laid_out.data(), rows, n, x.data(), tokens, y.data(), rows + 1, scratch.data(),
             threads, layout);
      for (size_t t = 0; t < tokens; ++t) {
        for (size_t r = 0; r < rows; ++r) {
          const float want = k.dot(wt, w.data() + r * rb, act.data() + t * row_bytes(at, n), n);
          ASSERT_EQ(y[t * (rows + 1) + r], want)
              << dtype_name(wt) << " rows=" << rows << " n=" << n << " tokens=" << tokens
              << " threads=" << threads << " r=" << r << " t=" << t << " isa=" << k.name
              << (layout == WeightLayout::kRepackedTiles ? " repacked" : "");
        }
        EXPECT_EQ(y[t * (rows + 1) + rows], -1.0f) << "wrote past row " << rows;
      }
    }
  }
}

// Shapes that leave rows and tokens outside the tiles (rows not a multiple of kTileRows or of
// the 16-row blocks, tokens more than one tile's kMaxTileTokens).
TEST(GemmMatmul, OddShapesEqualDotsOnAnyThreadCount) {
  std::mt19937 rng(5);
  for (DType wt : kWeightTypes) {
    for (const auto& [rows, nb] :
         {std::pair<size_t, size_t>{1, 3}, {6, 9}, {37, 8}, {45, 33}, {70, 12}}) {
      expect_matmul_equals_dots(rng, wt, rows, nb, WeightLayout::kRows);
    }
  }
}

// Repacked weights: one tile, a tile past the 16-row blocks, and several blocks' worth.
TEST(GemmMatmul, RepackedWeightsEqualDotsOnAnyThreadCount) {
  std::mt19937 rng(6);
  size_t tested = 0;
  for (DType wt : kWeightTypes) {
    if (active_kernels().repacked[static_cast<size_t>(wt)].repack == nullptr) continue;
    for (const auto& [rows, nb] : {std::pair<size_t, size_t>{8, 3}, {24, 9}, {72, 33}, {48, 16}}) {
      expect_matmul_equals_dots(rng, wt, rows, nb, WeightLayout::kRepackedTiles);
      ++tested;
    }
  }
  if (tested == 0) GTEST_SKIP() << active_kernels().name << " repacks no weight type";
}

// matmul_shared: products of one X with matrices of several activation types (Q8_K twice,
// Q8_0, F16; then Q8_0 twice more, past what one step takes), laid out as the model loader leaves
// them, equal the same products made one by one, for 1..3 threads, in a team of the caller's or
// its own (where each thread converts a single token itself), within their scratch.
TEST(GemmMatmul, SharedInputEqualsSeparateProducts) {
  std::mt19937 rng(7);
  const KernelSet& k = active_kernels();
  const size_t n = 512;
  struct Case {
    DType type;
    size_t rows;
  };
  // Enough rows for a single token to be split among threads (matmul's kMinParallelWork).
  const Case cases[] = {{DType::kQ4_K, 64}, {DType::kQ6_K, 37}, {DType::kQ8_0, 48},
                        {DType::kF16, 21},  {DType::kQ5_0, 32}, {DType::kQ4_0, 25}};
  static_assert(std::size(cases) > kMaxSharedOutputs);
  std::vector<std::vector<uint8_t>> weights;
  std::vector<MatmulOutput> outs;
  for (const Case& c : cases) {
    const size_t rb = row_bytes(c.type, n);
    weights.push_back(random_rows(rng, c.type, c.rows, n));
    WeightLayout layout = WeightLayout::kRows;
    const TileRepacking& repacking = k.repacked[static_cast<size_t>(c.type)];
    if (repacking.repack != nullptr && c.rows % kTileRows == 0) {
      std::vector<uint8_t> laid_out(weights.back().size());
      for (size_t r = 0; r < c.rows; r += kTileRows) {
        repacking.repack(weights.back().data() + r * rb, n, laid_out.data() + r * rb);
      }
      weights.back() = std::move(laid_out);
      layout = WeightLayout::kRepackedTiles;
    }
    outs.push_back({c.type, weights.back().data(), c.rows, nullptr, c.rows, layout});
  }
  for (size_t tokens : {size_t{1}, size_t{3}, kMaxTileTokens + 3}) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(tokens * n);
    for (float& v : x) v = nd(rng);
    std::vector<std::vector<float>> want(outs.size()), got(outs.size());
    for (size_t p = 0; p < outs.size(); ++p) {
      const MatmulOutput& o = outs[p];
      want[p].assign(tokens * o.rows, 0.0f);
      std::vector<uint8_t> scratch(matmul_scratch_bytes(o.type, n, tokens));
      matmul(o.type, o.w, o.rows, n, x.data(), tokens, want[p].data(), o.rows, scratch.data(), 1,
             o.layout);
    }
    for (const size_t count : {kMaxSharedOutputs, outs.size()}) {
      const std::span<MatmulOutput> shared = std::span(outs).first(count);
      for (int threads : {1, 2, 3}) {
        for (bool in_team : {false, true}) {
          // In a team, each thread converts a single token for itself, in its own scratch.
          const size_t scratch_bytes =
              matmul_shared_scratch_bytes(shared, n, tokens, in_team ? threads : 1);
          for (size_t p = 0; p < count; ++p) {
            got[p].assign(tokens * outs[p].rows, -1.0f);
            outs[p].y = got[p].data();
          }
          std::vector<uint8_t> scratch(scratch_bytes + 64, 0xA5);
          if (in_team) {
            // A team needs the schedule zero at first (matmul.h), then leaves it for its next
            // call: a second call, after the outputs are cleared, must give them all again.
            std::fill_n(scratch.begin(), kMatmulScheduleBytes, 0);
#pragma omp parallel num_threads(threads)
            {
              matmul_shared(shared, n, x.data(), tokens, scratch.data(), 1);
#pragma omp single
              for (size_t p = 0; p < count; ++p) std::fill(got[p].begin(), got[p].end(), -1.0f);
              matmul_shared(shared, n, x.data(), tokens, scratch.data(), 1);
            }
          } else {
            // Outside a team, matmul clears the schedule itself: bytes that read as blocks
            // left to take must not be taken.
            std::iota(scratch.begin(), scratch.begin() + kMatmulScheduleBytes, uint8_t{0});
            matmul_shared(shared, n, x.data(), tokens, scratch.data(), threads);
          }
          for (size_t p = 0; p < count; ++p) {
            EXPECT_EQ(got[p], want[p])
                << dtype_name(outs[p].type) << " tokens=" << tokens << " threads=" << threads
                << " in_team=" << in_team << " of " << count;
          }
          for (size_t i = scratch_bytes; i < scratch.size(); ++i) {
            ASSERT_EQ(scratch[i], 0xA5) << "wrote past the scratch at " << i;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace slm
