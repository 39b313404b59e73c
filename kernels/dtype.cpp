#include "kernels/dtype.h"

#include <array>
#include <stdexcept>

namespace slm {
namespace {

// Block sizes from ggml's type table (ggml.c `type_traits`). QK_K = 256 for K-quants.
constexpr std::array kTypes = {
    DTypeTraits{DType::kF32, "f32", 1, 4},
    DTypeTraits{DType::kF16, "f16", 1, 2},
    DTypeTraits{DType::kQ4_0, "q4_0", 32, 18},
    DTypeTraits{DType::kQ4_1, "q4_1", 32, 20},
    DTypeTraits{DType::kQ5_0, "q5_0", 32, 22},
    DTypeTraits{DType::kQ5_1, "q5_1", 32, 24},
    DTypeTraits{DType::kQ8_0, "q8_0", 32, 34},
    DTypeTraits{DType::kQ8_1, "q8_1", 32, 36},
    DTypeTraits{DType::kQ2_K, "q2_K", 256, 84},
    DTypeTraits{DType::kQ3_K, "q3_K", 256, 110},
    DTypeTraits{DType::kQ4_K, "q4_K", 256, 144},
    DTypeTraits{DType::kQ5_K, "q5_K", 256, 176},
    DTypeTraits{DType::kQ6_K, "q6_K", 256, 210},
    DTypeTraits{DType::kQ8_K, "q8_K", 256, 292},
    DTypeTraits{DType::kIQ2_XXS, "iq2_xxs", 256, 66},
    DTypeTraits{DType::kIQ2_XS, "iq2_xs", 256, 74},
    DTypeTraits{DType::kIQ3_XXS, "iq3_xxs", 256, 98},
    DTypeTraits{DType::kIQ1_S, "iq1_s", 256, 50},
    DTypeTraits{DType::kIQ4_NL, "iq4_nl", 32, 18},
    DTypeTraits{DType::kIQ3_S, "iq3_s", 256, 110},
    DTypeTraits{DType::kIQ2_S, "iq2_s", 256, 82},
    DTypeTraits{DType::kIQ4_XS, "iq4_xs", 256, 136},
    DTypeTraits{DType::kI8, "i8", 1, 1},
    DTypeTraits{DType::kI16, "i16", 1, 2},
    DTypeTraits{DType::kI32, "i32", 1, 4},
    DTypeTraits{DType::kI64, "i64", 1, 8},
    DTypeTraits{DType::kF64, "f64", 1, 8},
    DTypeTraits{DType::kIQ1_M, "iq1_m", 256, 56},
    DTypeTraits{DType::kBF16, "bf16", 1, 2},
    DTypeTraits{DType::kTQ1_0, "tq1_0", 256, 54},
    DTypeTraits{DType::kTQ2_0, "tq2_0", 256, 66},
    DTypeTraits{DType::kMXFP4, "mxfp4", 32, 17},
};

}  // namespace

std::optional<DTypeTraits> dtype_traits(uint32_t id) {
  for (const DTypeTraits& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

const DTypeTraits& traits(DType type) {
  for (const DTypeTraits& t : kTypes) {
    if (t.type == type) return t;
  }
  throw std::logic_error("slm: DType without traits");  // unreachable for enum values
}

std::string_view dtype_name(DType type) { return traits(type).name; }

}  // namespace slm
