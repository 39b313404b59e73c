// Runtime choice of the kernel set (ISA) used by matmul: chosen once, at first use, from what the
// CPU supports (CPUID on x86, HWCAP on aarch64), or forced with SLM_ISA=scalar|avx2|avx512|neon.
//
// A KernelSet holds function pointers; any entry an ISA does not implement falls back to the
// scalar reference (kernels/ref), which stays the ground truth. Contract of every SIMD kernel:
//   - quantizers (activation rows) produce bytes identical to the reference;
//   - quantized dots compute each block's integer sum exactly as the reference does and the
//     block term float(sumi) * (d_w * d_x) with the same float operations, so every term is
//     bit-identical; only the order in which the block terms are added differs (several
//     accumulators instead of one running sum), which moves the result by float rounding
//     (~1e-7 of sum |term|);
//   - F32/F16 dots form the exact products and accumulate them in double, as the reference does,
//     in a different order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ref/ops.h"

namespace slm {

enum class Isa { kScalar, kAvx2, kAvx512, kNeon };

using VecDotFn = float (*)(const void* w_row, const void* x_row, size_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, size_t n);

// Prefill GEMM tiles. A tile computes Y[t][r] = dot(W row r, X row t) for r < kTileRows and
// t < n_tokens (<= kMaxTileTokens), unpacking each weight block once for all those tokens. Every
// Y element must be bit-identical to what the set's dot gives for that (row, token), so prefill
// and decode, and any split of the work, agree. The tile reads the activation rows (X, in the
// weight type's ref::vec_dot_type) as quantized, or packed once per row by the set's
// KernelSet::pack[activation type] where it has one:
//   - Q8_0: always packed, into groups of 8 blocks: the 8 x 32 quant bytes in an order of the
//     ISA's choosing, then the 8 block scales as floats, then the 8 blocks' sums of quants as
//     int32; the blocks after the last full group stay plain BlockQ8_0, followed by their sums
//     of quants as int32;
//   - F16 (F16 weights): as quantized, or (AVX-512) widened to F32, exactly, so that the tiles
//     convert only their weights;
//   - Q8_K (K-quant weights): the rows as quantized (x_stride = their row bytes), since a
//     BlockQ8_K already carries its float scale and its sums of 16 quants.
constexpr size_t kTileRows = 8;
constexpr size_t kMaxTileTokens = 64;
// matmul hands a repacked run's tile (TileRepacking) at most this many tokens at a time. Such a
// tile reads each token's activations once per row and group of blocks: 16 tokens' (5 KB) stay in
// L1 beside their accumulators, 64 tokens' do not (BM_Matmul q4_0 repacked pp512 at 2048 x 5632,
// 1 thread: 87 -> 108-137 GFLOP/s). A plain tile unpacks each weight block once per call, so it
// keeps 64.
constexpr size_t kRepackedTileTokens = 16;
constexpr size_t kPackGroup = 8;  // blocks per packed group
// Where a packed Q8_0 group's parts start: its quant bytes at 0, then the scales, then the sums.
constexpr size_t kPackedScalesAt = kPackGroup * 32;
constexpr size_t kPackedSumsAt = kPackedScalesAt + kPackGroup * sizeof(float);
constexpr size_t kPackedGroupBytes = kPackedSumsAt + kPackGroup * sizeof(int32_t);
size_t packed_q8_0_bytes(size_t n);
// Bytes of one packed activation row of n elements (activations_packable types).
size_t packed_row_bytes(DType act_type, size_t n);
using PackRowFn = void (*)(const void* x_row, size_t n, void* dst);
using GemmTileFn = void (*)(const void* w, size_t w_stride, const void* x, size_t x_stride,
                            size_t n_tokens, size_t n, float* y, size_t y_stride);
// The activation types a set may pack for its tiles (KernelSet::pack).
constexpr bool activations_packable(DType act_type) {
  return act_type == DType::kQ8_0 || act_type == DType::kF16;
}

// Weights in WeightLayout::kRepackedTiles (kernels/dtype.h): every kTileRows consecutive rows
// rewritten at load into one run of the same size, in an order of the set's choosing, so decode
// streams one run per tile and unpacks it with fewer instructions.
struct TileRepacking {
  // kTileRows rows of n elements (row after row) -> dst (kTileRows * row bytes; not overlapping).
  void (*repack)(const void* rows, size_t n, void* dst) = nullptr;
  // The tile over one repacked run (w_stride: the bytes of one original row), for any n_tokens
  // from 1, bit-identical to the set's dots of the original rows.
  GemmTileFn tile = nullptr;
  // Row r (< kTileRows) of a repacked run as ref::dequantize_row gives the original row: the
  // embedding lookups of a matrix the output layer shares (tied embeddings).
  void (*dequantize_row)(const void* run, size_t r, size_t n, float* y) = nullptr;
  // Optional: `tile` over two consecutive runs (2 · kTileRows rows) at once, the same bits.
  GemmTileFn tile_pair = nullptr;
};

// The element-wise and row ops of a forward pass (formulas in kernels/ref/ops.h). Every entry but
// attention_heads and attention_causal is always set: the scalar references by default, replaced
// by an ISA's version where it has one. SIMD versions agree with the references to float rounding
// (and, for exp/tanh, to the stated error of their approximations; tests/simd_ops_test.cpp checks
// the bounds).
struct OpsSet {
  void (*rms_norm)(const float* x, const float* w, float eps, float* y, size_t n) = ref::rms_norm;
  void (*layer_norm)(const float* x, const float* w, const float* b, float eps, float* y,
                     size_t n) = ref::layer_norm;
  void (*rope_interleaved)(float* head, const float* cs, size_t n_rot) = ref::rope_interleaved;
  void (*rope_half_split)(float* head, const float* cs, size_t n_rot) = ref::rope_half_split;
  void (*softmax)(float* x, size_t n) = ref::softmax;
  void (*swiglu)(const float* g, const float* u, float* y, size_t n) = ref::swiglu;
  void (*gelu)(const float* x, float* y, size_t n) = ref::gelu;
  void (*geglu)(const float* g, const float* u, float* y, size_t n) = ref::geglu;
  void (*add)(float* y, const float* x, size_t n) = ref::add;
  // x = cap · tanh(x / cap) (Gemma 2's final logits: a whole vocabulary per token). SIMD versions
  // take tanh through exp: absolute error within 2e-7 · cap.
  void (*softcap)(float* x, float cap, size_t n) = ref::softcap;
  // `scores` (n_keys floats) is scratch for versions that need it; SIMD ones use an online
  // softmax over blocks of positions and ignore it.
  void (*attention)(const float* q, const ref::KvRows& k, const ref::KvRows& v, bool kv_is_f16,
                    size_t n_keys, size_t head_dim, float scale, float* scores,
                    float* out) = ref::attention;
  // attention() for n_heads query heads that read the same key and value rows (grouped-query
  // attention), q and out holding the heads one after another, each head's result bit-identical
  // to attention()'s: SIMD versions load each row once for several heads. Null in a set without
  // one; the caller then calls attention() per head.
  void (*attention_heads)(const float* q, size_t n_heads, const ref::KvRows& k,
                          const ref::KvRows& v, bool kv_is_f16, size_t n_keys, size_t head_dim,
                          float scale, float* out) = nullptr;
  // Causal attention over one kv head for n_tokens consecutive positions of one sequence, n_heads
  // query heads each (a prompt): token t sees the first n_keys0 + t rows of k and v; head h's q
  // is at q + t · q_stride + h · head_dim and its result goes to out + t · out_stride + h ·
  // head_dim, bit-identical to attention()'s with n_keys0 + t keys (cap > 0: to
  // attention_softcapped()'s). SIMD versions go through the rows block by block for all the
  // tokens, converting each block once where the heads are narrow enough. Null in a set without
  // one.
  void (*attention_causal)(const float* q, size_t q_stride, size_t n_heads, size_t n_tokens,
                           size_t n_keys0, const ref::KvRows& k, const ref::KvRows& v,
                           bool kv_is_f16, size_t head_dim, float scale, float cap, float* out,
                           size_t out_stride) = nullptr;
  // Mixture of experts: O(n_embd) per routed expert and token, not worth a SIMD version yet.
  void (*add_scaled)(float* y, const float* x, float a, size_t n) = ref::add_scaled;
  void (*attention_softcapped)(const float* q, const ref::KvRows& k, const ref::KvRows& v,
                               bool kv_is_f16, size_t n_keys, size_t head_dim, float scale,
                               float cap, float* scores, float* out) = ref::attention_softcapped;
  // Over a Q8_0 cache (cap 0: plain; cap > 0: soft-capped). SIMD versions agree with the
  // reference to float rounding, as the float attentions do (tests/simd_kv_q8_test.cpp).
  void (*attention_q8_0)(const float* q, const ref::KvRows& k, const ref::KvRows& v,
                         size_t n_keys, size_t head_dim, float scale, float cap, float* scores,
                         float* out) = ref::attention_q8_0;
};

// One more than the largest DType value (kMXFP4 = 39).
constexpr size_t kDTypeSlots = 40;

struct KernelSet {
  Isa isa = Isa::kScalar;
  std::string_view name = "scalar";
  // vec_dot[weight type]: dot with a row of ref::vec_dot_type(weight type). Null: reference.
  std::array<VecDotFn, kDTypeSlots> vec_dot{};
  // quantize[activation type]: converts a float row (Q8_0, Q8_K, F16). Null: reference.
  std::array<QuantizeRowFn, kDTypeSlots> quantize{};
  // pack[activation type], for activations_packable types: null where the set's tiles read the
  // rows as quantized. A set with tiles for Q8_0 activations has pack[Q8_0].
  std::array<PackRowFn, kDTypeSlots> pack{};
  // gemm_tile[weight type]: null where matmul must use one dot per element.
  std::array<GemmTileFn, kDTypeSlots> gemm_tile{};
  // repacked[weight type]: all three functions, or none (the type stays rows).
  std::array<TileRepacking, kDTypeSlots> repacked{};
  OpsSet ops;

  // The dispatched entry points (reference where the set has no kernel for the type).
  float dot(DType weight_type, const void* w_row, const void* x_row, size_t n) const;
  void quantize_row(DType type, const float* src, void* dst, size_t n) const;
};

// The set matmul uses: SLM_ISA if set, else the best the CPU supports. Chosen on the first call
// (thread-safe). Throws InvalidArgumentError for an unknown SLM_ISA name and UnsupportedError
// for an ISA this CPU (or build) lacks, naming the ones available; call it outside parallel
// regions (matmul does, before its team starts).
const KernelSet& active_kernels();
std::string_view active_isa_name();

// Every ISA this binary was built with and this CPU can run, scalar first (tests loop over them).
std::vector<Isa> available_isas();
// The set of an available ISA (precondition: isa is in available_isas()).
const KernelSet& kernel_set(Isa isa);
std::string_view isa_name(Isa isa);

}  // namespace slm
