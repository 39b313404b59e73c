#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/quant.h"

namespace slm {

// Multiply-adds below which a matmul is not worth splitting across threads.
constexpr size_t kMinParallelWork = size_t{1} << 16;

// Tiles over plain rows need at least two tokens to reuse anything; one token (decode) runs on
// dots, unless the weights were repacked for the tiles. F16 and BF16 too: their dots are one FMA
// chain, but each streams one row, and an 8-row tile's 8 streams were slower from DRAM (slm bench
// tg32, one thread: SmolLM2-135M F16 98 t/s on dots, 40 on tiles; TinyLlama-1.1B F16 14.1, 9.6).
constexpr size_t kMinTileTokens = 2;

// TileRepacking::tile_pair reads two runs side by side. From DRAM one thread streams the pair at
// about half the rate of one run, so calls with few tokens, which that stream limits, keep to one
// run (BM_Matmul q4_0 / q8_0 _t1_repacked at 32000 x 2048, GFLOP/s one run -> pair: 1 token
// 34 -> 17-19 GB/s; 2 tokens 85-152 -> 97-104 / 85-103 -> 65-73; 4 tokens 197-204 -> 156-166 /
// 100-115 -> 121-123; 8 tokens 172 -> 196-211 / 108 -> 145-158).
constexpr size_t kMinPairTokens = 8;

namespace {

// X converted for every distinct activation type of `outs`, n_tokens rows each.
size_t conversion_bytes(std::span<const MatmulOutput> outs, size_t cols, size_t n_tokens) {
  size_t bytes = 0;
  for (size_t p = 0; p < outs.size(); ++p) {
    const DType act_type = ref::vec_dot_type(outs[p].type);
    const bool seen =
        std::any_of(outs.begin(), outs.begin() + ptrdiff_t(p),
                    [&](const MatmulOutput& o) { return ref::vec_dot_type(o.type) == act_type; });
    if (seen) continue;
    bytes += row_bytes(act_type, cols) * n_tokens;
    // Room for a packed copy, whether or not the set packs the type (repacked weights use the
    // tiles for one token too).
    if (activations_packable(act_type)) bytes += packed_row_bytes(act_type, cols) * n_tokens;
  }
  return bytes;
}

// One token inside a team of several: each thread converts X into its own part of the scratch.
bool converts_per_thread(size_t n_tokens, int team) { return n_tokens == 1 && team > 1; }

}  // namespace

size_t matmul_shared_scratch_bytes(std::span<const MatmulOutput> outs, size_t cols, size_t n_tokens,
                                   int team) {
  const size_t bytes = conversion_bytes(outs, cols, n_tokens);
  return kMatmulScheduleBytes +
         (converts_per_thread(n_tokens, team) ? bytes * size_t(team) : bytes);
}

size_t matmul_scratch_bytes(DType type, size_t cols, size_t n_tokens, int team) {
  const MatmulOutput out{type, nullptr, 0, nullptr, 0};
  return matmul_shared_scratch_bytes(std::span(&out, 1), cols, n_tokens, team);
}

namespace {

// Weight rows are handed out in blocks of this many, whatever the thread count, so a kernel that
// works on a range of rows sees the same ranges (and rounds the same way) for any team size.
constexpr int64_t kRowBlock = 16;

// X converted for one activation type: its rows as quantized and, where a product's tiles read
// them so, their copy packed by KernelSet::pack.
struct Activation {
  DType type = DType::kF32;
  size_t row_bytes = 0, packed_bytes = 0;  // per token
  uint8_t* rows = nullptr;
  uint8_t* packed = nullptr;
  bool pack = false;
};

// One weight matrix's product with its converted X.
struct Product {
  const KernelSet* k = nullptr;
  DType type = DType::kF32;
  const uint8_t* w = nullptr;
  size_t cols = 0, w_bytes = 0, rows = 0, y_stride = 0;
  float* y = nullptr;
  const Activation* act = nullptr;
  GemmTileFn tile = nullptr;        // null: one dot per element
  const uint8_t* tile_x = nullptr;  // the activation rows as `tile` reads them
  size_t tile_x_bytes = 0;
  size_t tile_tokens = kMaxTileTokens;  // at most this many per call of `tile`
  GemmTileFn tile_pair = nullptr;       // optional: `tile` over two consecutive tiles at once

  int64_t blocks() const { return int64_t((rows + kRowBlock - 1) / kRowBlock); }
  // Rows [r0, r1) of Y for every token, one dot per element. Weight rows outer, tokens inner:
  // each weight row is read once and reused for every token.
  void dots(size_t r0, size_t r1, size_t n_tokens) const {
    for (size_t r = r0; r < r1; ++r) {
      const uint8_t* w_row = w + r * w_bytes;
      for (size_t t = 0; t < n_tokens; ++t) {
        y[t * y_stride + r] = k->dot(type, w_row, act->rows + t * act->row_bytes, cols);
      }
    }
  }
  // Rows [r0, r1) of Y for every token: tiles of kTileRows rows x up to tile_tokens tokens,
  // dots for the rows left over. A tile gives each element bit-identically to a dot.
  void rows_range(size_t r0, size_t r1, size_t n_tokens) const {
    if (tile == nullptr) return dots(r0, r1, n_tokens);
    const size_t tile_r1 = r0 + (r1 - r0) / kTileRows * kTileRows;
    for (size_t t = 0; t < n_tokens; t += tile_tokens) {
      const size_t chunk = std::min(tile_tokens, n_tokens - t);
      size_t r = r0;
      for (; tile_pair != nullptr && chunk >= kMinPairTokens && r + 2 * kTileRows <= tile_r1;
           r += 2 * kTileRows) {
        tile_pair(w + r * w_bytes, w_bytes, tile_x + t * tile_x_bytes, tile_x_bytes, chunk, cols,
                  y + t * y_stride + r, y_stride);
      }
      for (; r < tile_r1; r += kTileRows) {
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

// The work of matmul_shared, split into two steps that the callers below share out among a team:
// converting X (per activation type and token), then the row blocks of every product.
struct SharedJob {
  const KernelSet* k = nullptr;
  const float* x = nullptr;
  size_t cols = 0, n_tokens = 0, n_acts = 0, n_products = 0;
  Activation acts[kMaxSharedOutputs];
  Product products[kMaxSharedOutputs];
  int64_t first_block[kMaxSharedOutputs + 1] = {};  // products[p]'s blocks start here

  SharedJob(std::span<const MatmulOutput> outs, size_t cols_, const float* x_, size_t n,
            void* scratch)
      : k(&active_kernels()), x(x_), cols(cols_), n_tokens(n), n_products(outs.size()) {
    // Chosen once; may throw for a bad SLM_ISA, so callers that run a team call
    // active_kernels() before starting it (then this cannot throw).
    auto* free = static_cast<uint8_t*>(scratch);
    for (size_t p = 0; p < outs.size(); ++p) {
      const MatmulOutput& o = outs[p];
      const DType act_type = ref::vec_dot_type(o.type);
      Activation* act = std::find_if(acts, acts + n_acts,
                                     [&](const Activation& a) { return a.type == act_type; });
      if (act == acts + n_acts) {  // the first product of this activation type: room for X
        ++n_acts;
        act->type = act_type;
        act->row_bytes = row_bytes(act_type, cols);
        act->rows = free;
        free += act->row_bytes * n;
        if (activations_packable(act_type) && k->pack[static_cast<size_t>(act_type)] != nullptr) {
          act->packed_bytes = packed_row_bytes(act_type, cols);
          act->packed = free;
          free += act->packed_bytes * n;
        }
      }
      const auto id = static_cast<size_t>(o.type);
      GemmTileFn tile = nullptr;
      if (o.layout == WeightLayout::kRepackedTiles) {
        tile = k->repacked[id].tile;  // every row is in a tile: rows_range calls no dot
      } else if (n >= kMinTileTokens && id < kDTypeSlots) {
        tile = k->gemm_tile[id];
      }
      const bool pack = tile != nullptr && act->packed != nullptr;
      act->pack = act->pack || pack;
      products[p] = {
          k,
          o.type,
          static_cast<const uint8_t*>(o.w),
          cols,
          row_bytes(o.type, cols),
          o.rows,
          o.y_stride,
          o.y,
          act,
          tile,
          pack ? act->packed : act->rows,
          pack ? act->packed_bytes : act->row_bytes,
          o.layout == WeightLayout::kRepackedTiles ? kRepackedTileTokens : kMaxTileTokens,
          o.layout == WeightLayout::kRepackedTiles ? k->repacked[id].tile_pair : nullptr};
      first_block[p + 1] = first_block[p] + products[p].blocks();
    }
  }
  int64_t conversions() const { return int64_t(n_acts * n_tokens); }
  int64_t blocks() const { return first_block[n_products]; }
  size_t weight_bytes() const {
    size_t bytes = 0;
    for (size_t p = 0; p < n_products; ++p) bytes += products[p].rows * products[p].w_bytes;
    return bytes;
  }
  size_t work() const {
    size_t macs = 0;
    for (size_t p = 0; p < n_products; ++p) macs += products[p].rows * cols * n_tokens;
    return macs;
  }
  void convert(int64_t i) const {
    const Activation& a = acts[size_t(i) / n_tokens];
    const size_t t = size_t(i) % n_tokens;
    uint8_t* row = a.rows + t * a.row_bytes;
    k->quantize_row(a.type, x + t * cols, row, cols);
    if (a.pack) k->pack[static_cast<size_t>(a.type)](row, cols, a.packed + t * a.packed_bytes);
  }
  void row_block(int64_t b) const {
    size_t p = 0;
    while (b >= first_block[p + 1]) ++p;
    products[p].row_block(b - first_block[p], n_tokens);
  }
};

// The row blocks of a step not yet taken from one thread's share, [front, back), in one word of
// the scratch's schedule: the owner takes them from the front, the others from the back.
class Share {
 public:
  explicit Share(uint64_t& word) : word_(word) {}
  void reset(uint32_t front, uint32_t back) { word_.store(pack(front, back), kOrder); }
  // The next block from the front (the owner) or the back (a thread done with its own share);
  // false when none is left.
  bool take(bool from_front, int64_t& block) {
    uint64_t v = word_.load(kOrder);
    for (;;) {
      const auto front = uint32_t(v), back = uint32_t(v >> 32);
      if (front >= back) return false;
      const uint64_t rest = from_front ? pack(front + 1, back) : pack(front, back - 1);
      if (word_.compare_exchange_weak(v, rest, kOrder)) {
        block = from_front ? front : back - 1;
        return true;
      }
    }
  }

 private:
  // Only who computes a block is decided here; what it reads was written before the step's
  // first barrier, or by the thread itself, and what it writes is read after the last.
  static constexpr auto kOrder = std::memory_order_relaxed;
  static uint64_t pack(uint32_t front, uint32_t back) { return uint64_t{back} << 32 | front; }
  std::atomic_ref<uint64_t> word_;
};

// The threads that can take each other's blocks: one word each, a cache line apart (kept
// apart from the conversions that follow in the scratch).
constexpr size_t kLine = 64;
constexpr int kMaxSharingTeam = int(kMatmulScheduleBytes / kLine) - 1;
constexpr size_t kBalancedStepBytes = size_t{64} << 20;

uint64_t& schedule_word(void* scratch, int thread) {
  const auto line = (reinterpret_cast<uintptr_t>(scratch) + kLine - 1) / kLine * kLine;
  return *reinterpret_cast<uint64_t*>(line + size_t(thread) * kLine);
}

// The row blocks of the job, shared out in the team of the calling thread (which every thread of
// it calls), then a barrier. Each thread owns a contiguous share, as a static schedule would
// give it, so that its weights stream in one run. Every block is computed whole by one thread,
// so which thread does it changes no result.
//
// Balanced, each thread takes its share from the front and, done with it, the others' last
// blocks one at a time from the back until none is left. This is for long steps: several tokens'
// compute, or a single token over more than kBalancedStepBytes of weights (an output layer),
// where what one thread's slower stream leaves the other waiting grows with the stream
// (Qwen2.5-0.5B's 145 MB output layer took 4 % less time balanced). A word as the team's
// previous call left it is empty (every block was taken before that call's barrier), so a
// thread that looks at a share before its owner has reset it for this call finds nothing to take.
//
// A shorter single-token step is a few microseconds of weight stream, and each thread keeps to
// its own share: once a thread takes from the back, every block the owner takes meets the other's
// atomic on the same word, the owner stalls for the line each time, and the blocks taken from the
// back stream cold. With the two threads on different CCDs (the host's higher-bandwidth
// placement, where a round trip between them takes 5x longer), SmolLM2-135M's gate/up step took
// 27 us a layer balanced and 20 us static (docs/performance.md, "Decode steps").
void run_blocks(const SharedJob& job, void* scratch) {
  const int team = omp_get_num_threads(), me = omp_get_thread_num();
  const bool balance = job.n_tokens > 1 || job.weight_bytes() > kBalancedStepBytes;
  const int64_t blocks = job.blocks();
  const auto start = [&](int t) { return uint32_t(blocks * t / team); };
  if (!balance || team > kMaxSharingTeam) {
    for (int64_t b = start(me); b < start(me + 1); ++b) job.row_block(b);
#pragma omp barrier
    return;
  }
  Share(schedule_word(scratch, me)).reset(start(me), start(me + 1));
  int64_t b = 0;
  for (int k = 0; k < team; ++k) {
    Share share(schedule_word(scratch, (me + k) % team));
    while (share.take(/*from_front=*/k == 0, b)) job.row_block(b);
  }
#pragma omp barrier
}

// Orphaned worksharing: binds to the innermost enclosing parallel region, so every thread of that
// team must call it. The barriers at the end of the `omp for` and of run_blocks order convert →
// dot → caller.
void run_shared(const SharedJob& job, void* scratch) {
  const int64_t conversions = job.conversions();
#pragma omp for schedule(static)
  for (int64_t i = 0; i < conversions; ++i) job.convert(i);
  run_blocks(job, scratch);
}

// Every thread of the team converts X (one token) into its own scratch, so only the row blocks
// are shared out: one barrier, and no thread waits for another's conversion.
void run_private(const SharedJob& job, void* scratch) {
  for (int64_t i = 0; i < job.conversions(); ++i) job.convert(i);
  run_blocks(job, scratch);
}

// All of it on the calling thread.
void run_alone(const SharedJob& job) {
  for (int64_t i = 0; i < job.conversions(); ++i) job.convert(i);
  for (int64_t b = 0; b < job.blocks(); ++b) job.row_block(b);
}

}  // namespace

void matmul_shared(std::span<const MatmulOutput> outs, size_t cols, const float* x, size_t n_tokens,
                   void* scratch, int threads) {
  if (outs.size() > kMaxSharedOutputs) {  // in turns, each within the scratch of all of them
    matmul_shared(outs.first(kMaxSharedOutputs), cols, x, n_tokens, scratch, threads);
    matmul_shared(outs.subspan(kMaxSharedOutputs), cols, x, n_tokens, scratch, threads);
    return;
  }
  const int team = omp_in_parallel() ? omp_get_num_threads() : 1;
  auto* conversions = static_cast<uint8_t*>(scratch) + kMatmulScheduleBytes;
  if (team > 1 && converts_per_thread(n_tokens, team)) {
    const size_t own = conversion_bytes(outs, cols, n_tokens) * size_t(omp_get_thread_num());
    const SharedJob job(outs, cols, x, n_tokens, conversions + own);
    if (job.work() >= kMinParallelWork) return run_private(job, scratch);
  }
  const SharedJob job(outs, cols, x, n_tokens, conversions);
  // Small products run on one thread: splitting them costs more than they take.
  const bool small = job.work() < kMinParallelWork;
  if (omp_in_parallel()) {  // called by every thread of a running team (Decoder::forward)
    if (small || team == 1) {
#pragma omp single
      run_alone(job);
    } else {
      run_shared(job, scratch);
    }
    return;
  }
  // Even a one-thread region costs libgomp futex calls: run small products without one.
  if (threads <= 1 || small) {
    run_alone(job);
    return;
  }
  std::memset(scratch, 0, kMatmulScheduleBytes);  // the schedule as a team's first call needs it
#pragma omp parallel num_threads(threads)
  run_shared(job, scratch);
}

void matmul(DType type, const void* w, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y, size_t y_stride, void* scratch, int threads, WeightLayout layout) {
  const MatmulOutput out{type, w, rows, y, y_stride, layout};
  matmul_shared(std::span(&out, 1), cols, x, n_tokens, scratch, threads);
}

}  // namespace slm
