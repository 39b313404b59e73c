// Element and block types of tensors, numbered exactly like ggml's `ggml_type` so GGUF files
// load unchanged. Only the table lives here; the math on each type lives in kernels/ref.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace slm {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  // 4 and 5 were Q4_2 / Q4_3, removed from ggml.
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  // 31-33 were Q4_0_4_4 / Q4_0_4_8 / Q4_0_8_8, removed from ggml.
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  // 36-38 were IQ4_NL_4_4 / _4_8 / _8_8, removed from ggml.
  kMXFP4 = 39,
};

// A type stores `block_elems` consecutive elements of a row in `block_bytes` bytes.
struct DTypeTraits {
  DType type;
  std::string_view name;  // ggml's name, e.g. "q4_0"
  uint32_t block_elems;
  uint32_t block_bytes;
};

// nullopt for an id ggml does not define (or has removed).
std::optional<DTypeTraits> dtype_traits(uint32_t id);
// Traits of a known type (the enum values above are all known).
const DTypeTraits& traits(DType type);
std::string_view dtype_name(DType type);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(DType type, size_t n) {
  const DTypeTraits& t = traits(type);
  return n / t.block_elems * t.block_bytes;
}

// How a weight matrix's bytes are laid out: kRows as in the file, row after row; kRepackedTiles
// as the active kernel set rewrote them at load for its tiles (kernels/dispatch.h), which only
// matmul reads.
enum class WeightLayout { kRows, kRepackedTiles };

}  // namespace slm
