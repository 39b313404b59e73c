#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/ref/quant.h"

namespace slm {

// Multiply-adds below which a matmul is not worth splitting across threads.
constexpr size_t kMinParallelWork = size_t{1} << 16;

// Tiles over plain rows need at least two tokens to reuse anything; one token (decode) runs on
// dots, unless the weights were repacked for the tiles.
constexpr size_t kMinTileTokens = 2;

size_t matmul_scratch_bytes(DType type, size_t cols, size_t n_tokens) {
  const DType act_type = ref::vec_dot_type(type);
  size_t bytes = row_bytes(act_type, cols) * n_tokens;
  // Room for the packed copy of Q8_0 activations, whether or not the set has tiles for `type`
  // (repacked weights use the tiles for one token too).
  if (tile_activations_packed(act_type)) {
    bytes += packed_q8_0_bytes(cols) * n_tokens;
  }
  return bytes;
}

namespace {

// Weight rows are handed out in blocks of this many, whatever the thread count, so a kernel that
// works on a range of rows sees the same ranges (and rounds the same way) for any team size.
constexpr int64_t kRowBlock = 16;

// The work of one matmul, split into steps that the callers below share out among a team.
struct MatmulJob {
  const KernelSet& k;
  DType type, act_type;
  const uint8_t* w;
  size_t cols, w_bytes, act_bytes, rows, y_stride;
  const float* x;
  uint8_t* act;
  float* y;
  GemmTileFn tile;  // null: one dot per element
  bool pack;        // the tile reads the activation rows packed by pack_q8_0
  uint8_t* tile_x;  // the activation rows as `tile` reads them (act, or its packed copy)
  size_t tile_x_bytes;

  void quantize(int64_t t) const {
    uint8_t* row = act + size_t(t) * act_bytes;
    k.quantize_row(act_type, x + size_t(t) * cols, row, cols);
    if (pack) k.pack_q8_0(row, cols, tile_x + size_t(t) * tile_x_bytes);
  }
  // Rows [r0, r1) of Y for every token, one dot per element. Weight rows outer, tokens inner:
  // each weight row is read once and reused for every token.
  void dots(size_t r0, size_t r1, size_t n_tokens) const {
    for (size_t r = r0; r < r1; ++r) {
      const uint8_t* w_row = w + r * w_bytes;
      for (size_t t = 0; t < n_tokens; ++t) {
        y[t * y_stride + r] = k.dot(type, w_row, act + t * act_bytes, cols);
      }
    }
  }
  // Rows [r0, r1) of Y for every token: tiles of kTileRows rows x up to kMaxTileTokens tokens,
  // dots for the rows left over. A tile gives each element bit-identically to a dot.
  void rows_range(size_t r0, size_t r1, size_t n_tokens) const {
    if (tile == nullptr) return dots(r0, r1, n_tokens);
    const size_t tile_r1 = r0 + (r1 - r0) / kTileRows * kTileRows;
    for (size_t t = 0; t < n_tokens; t += kMaxTileTokens) {
      const size_t chunk = std::min(kMaxTileTokens, n_tokens - t);
      for (size_t r = r0; r < tile_r1; r += kTileRows) {
        tile(w + r * w_bytes, w_bytes, tile_x + t * tile_x_bytes, tile_x_bytes, chunk, cols,
             y + t * y_stride + r, y_stride);
      }
    }
    dots(tile_r1, r1, n_tokens);
  }
  void row_block(int64_t b, size_t n_tokens) const {
    const size_t r0 = size_t(b * kRowBlock);
    rows_range(r0, std::min(rows, r0 + size_t(kRowBlock)), n_tokens);
  }
};

// Orphaned worksharing: binds to the innermost enclosing parallel region, so every thread of that
// team must call it. The barriers at the end of each `omp for` order quantize → dot → caller.
void run_shared(const MatmulJob& job, size_t n_tokens) {
  const auto n_tok = static_cast<int64_t>(n_tokens);
  const auto n_blocks = static_cast<int64_t>((job.rows + kRowBlock - 1) / kRowBlock);
#pragma omp for schedule(static)
  for (int64_t t = 0; t < n_tok; ++t) job.quantize(t);
#pragma omp for schedule(static)
  for (int64_t b = 0; b < n_blocks; ++b) job.row_block(b, n_tokens);
}

// All of it on the calling thread.
void run_alone(const MatmulJob& job, size_t n_tokens) {
  for (size_t t = 0; t < n_tokens; ++t) job.quantize(int64_t(t));
  for (int64_t b = 0; b * kRowBlock < int64_t(job.rows); ++b) job.row_block(b, n_tokens);
}

}  // namespace

void matmul(DType type, const void* w, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y, size_t y_stride, void* scratch, int threads, WeightLayout layout) {
  // Chosen once; may throw for a bad SLM_ISA, so callers that run a team call active_kernels()
  // before starting it (then this cannot throw).
  const KernelSet& k = active_kernels();
  const DType act_type = ref::vec_dot_type(type);
  const size_t act_bytes = row_bytes(act_type, cols);
  GemmTileFn tile = nullptr;
  const auto id = static_cast<size_t>(type);
  const bool packed_x = tile_activations_packed(act_type);
  if (layout == WeightLayout::kRepackedTiles) {
    tile = k.repacked[id].tile;  // every row is in a tile: rows_range calls no dot
  } else if (n_tokens >= kMinTileTokens && id < kDTypeSlots &&
             (!packed_x || k.pack_q8_0 != nullptr)) {
    tile = k.gemm_tile[id];
  }
  auto* act = static_cast<uint8_t*>(scratch);
  const bool pack = tile != nullptr && packed_x;
  uint8_t* tile_x = pack ? act + act_bytes * n_tokens : act;
  const size_t tile_x_bytes = pack ? packed_q8_0_bytes(cols) : act_bytes;
  const auto* w_rows = static_cast<const uint8_t*>(w);
  const MatmulJob job{k, type, act_type, w_rows, cols, row_bytes(type, cols), act_bytes, rows,
                      y_stride, x, act, y, tile, pack, tile_x, tile_x_bytes};
  // Small products run on one thread: splitting them costs more than they take.
  const bool small = rows * cols * n_tokens < kMinParallelWork;
  if (omp_in_parallel()) {  // called by every thread of a running team (Decoder::forward)
    if (small || omp_get_num_threads() == 1) {
#pragma omp single
      run_alone(job, n_tokens);
    } else {
      run_shared(job, n_tokens);
    }
    return;
  }
  // Even a one-thread region costs libgomp futex calls: run small products without one.
  if (threads <= 1 || small) {
    run_alone(job, n_tokens);
    return;
  }
#pragma omp parallel num_threads(threads)
  run_shared(job, n_tokens);
}

}  // namespace slm
