// Matrix products of a weight matrix (any supported block type) with float activations.
// Knows nothing about models: W is `rows` rows of `cols` elements, row-major.
#pragma once

#include <cstddef>
#include <span>

#include "kernels/dtype.h"

namespace slm {

// Bytes of scratch matmul() needs to hold n_tokens activation rows converted for `type` (and,
// for Q8_0 activations, their copy packed for the tiles). `team`: the threads of the running team
// that will call it (1 for a caller outside a parallel region): inside a team, each thread
// converts a single token's row for itself, which spares the team a barrier and the wait for one
// thread's conversion.
size_t matmul_scratch_bytes(DType type, size_t cols, size_t n_tokens, int team = 1);

// The first bytes of every matmul scratch hold how the team shares out the rows. Before a
// running team first calls matmul with a scratch buffer, these bytes must be zero (as in a new
// std::vector<uint8_t>); each call leaves them ready for the next. A call outside a parallel
// region clears them itself.
constexpr size_t kMatmulScheduleBytes = 4096;

// Y[t][r] = Σ_i W[r][i] · X[t][i]   for t < n_tokens, r < rows.
// X is n_tokens rows of `cols` floats; Y rows are y_stride floats apart. Like ggml, X is first
// converted to the weight type's activation format (e.g. Q8_0 blocks), then every weight row is
// dotted with every converted X row: with several tokens, by the kernel set's GEMM tiles where it
// has them (KernelSet::gemm_tile, bit-identical to the dots). Each Y element is computed by one
// thread in a fixed order, so the result does not depend on `threads`.
// With WeightLayout::kRepackedTiles, W was rewritten by the active set's repacked[type] (every
// kTileRows rows; rows is a multiple of kTileRows) and is read by its tile, for any n_tokens,
// with the same results as the plain rows.
// Called inside an active parallel region, it must be called by every thread of that team (with
// the same arguments): the team shares the work (each thread its rows, ending in a barrier) and
// `threads` is ignored. Called outside one, it starts its own team of `threads`.
void matmul(DType type, const void* w, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y, size_t y_stride, void* scratch, int threads,
            WeightLayout layout = WeightLayout::kRows);

// One of several products of weight matrices with the same X (matmul_shared): Y = W · X with
// W `rows` x cols of `type` in `layout`, Y rows y_stride floats apart.
struct MatmulOutput {
  DType type;
  const void* w;
  size_t rows;
  float* y;
  size_t y_stride;
  WeightLayout layout = WeightLayout::kRows;
};

// At most this many outputs share one step (a layer's Q, K and V); more are done in turns.
constexpr size_t kMaxSharedOutputs = 4;

// Bytes of scratch matmul_shared needs: X converted once for each distinct activation type (for
// each thread of the team, for a single token; `team` as for matmul_scratch_bytes).
size_t matmul_shared_scratch_bytes(std::span<const MatmulOutput> outs, size_t cols, size_t n_tokens,
                                   int team = 1);

// Every output's product with X (n_tokens rows of `cols` floats), each bit-identical to matmul's:
// X is converted once per activation type and all the products' rows are shared out in one step,
// so a team meets at 2 barriers in all rather than 2 per product, and at 1 for a single token
// (decode of a small model spends a noticeable share of each token at barriers). Threads and
// teams as for matmul.
void matmul_shared(std::span<const MatmulOutput> outs, size_t cols, const float* x, size_t n_tokens,
                   void* scratch, int threads);

}  // namespace slm
