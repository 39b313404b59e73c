#include "kernels/matmul.h"

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/ref/quant.h"

namespace slm {

// Multiply-adds below which a matmul is not worth splitting across threads.
constexpr size_t kMinParallelWork = size_t{1} << 16;

size_t matmul_scratch_bytes(DType type, size_t cols, size_t n_tokens) {
  return row_bytes(ref::vec_dot_type(type), cols) * n_tokens;
}

void matmul(DType type, const void* w, size_t rows, size_t cols, const float* x, size_t n_tokens,
            float* y, size_t y_stride, void* scratch, int threads) {
  // Chosen once; may throw for a bad SLM_ISA, so before the team starts.
  const KernelSet& k = active_kernels();
  const DType act_type = ref::vec_dot_type(type);
  const size_t act_bytes = row_bytes(act_type, cols);
  const size_t w_bytes = row_bytes(type, cols);
  auto* act = static_cast<uint8_t*>(scratch);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto n_rows = static_cast<int64_t>(rows);
  const auto n_tok = static_cast<int64_t>(n_tokens);

  // Small products run on the calling thread: waking a team costs more than they take.
  const bool parallel = threads > 1 && rows * cols * n_tokens >= kMinParallelWork;
#pragma omp parallel num_threads(threads) if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n_tok; ++t) {
      k.quantize_row(act_type, x + t * cols, act + t * act_bytes, cols);
    }
    // Weight rows outer, tokens inner: each weight row is read once and reused for every token.
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint8_t* w_row = wb + r * w_bytes;
      for (int64_t t = 0; t < n_tok; ++t) {
        y[t * y_stride + r] = k.dot(type, w_row, act + t * act_bytes, cols);
      }
    }
  }
}

}  // namespace slm
