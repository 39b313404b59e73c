#include "kernels/dispatch.h"

#include <cstdlib>
#include <string>

#include "kernels/isa_kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/quant.h"
#include "slm/error.h"

namespace slm {

float KernelSet::dot(DType weight_type, const void* w_row, const void* x_row, size_t n) const {
  const auto id = static_cast<size_t>(weight_type);
  if (id < kDTypeSlots && vec_dot[id] != nullptr) return vec_dot[id](w_row, x_row, n);
  return ref::vec_dot(weight_type, w_row, x_row, n);
}

void KernelSet::quantize_row(DType type, const float* src, void* dst, size_t n) const {
  const auto id = static_cast<size_t>(type);
  if (id < kDTypeSlots && quantize[id] != nullptr) return quantize[id](src, dst, n);
  ref::quantize_row(type, src, dst, n);
}

static_assert(kPackedScalesAt == kPackGroup * kQK8_0, "a group's quants are its blocks' bytes");

size_t packed_q8_0_bytes(size_t n) {
  const size_t blocks = n / kQK8_0, groups = blocks / kPackGroup;
  return groups * kPackedGroupBytes +
         (blocks - groups * kPackGroup) * (sizeof(BlockQ8_0) + sizeof(int32_t));
}

size_t packed_row_bytes(DType act_type, size_t n) {
  return act_type == DType::kF16 ? n * sizeof(float) : packed_q8_0_bytes(n);
}

namespace {

constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon};

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
#if defined(__x86_64__) || defined(_M_X64)
    // libgcc's checks include the OS (XCR0) enabling the AVX / AVX-512 register state.
    case Isa::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      __builtin_cpu_init();
      return cpu_has(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case Isa::kNeon: return true;  // ASIMD is part of the aarch64 baseline
#endif
    default: return false;
  }
}

KernelSet build_set(Isa isa) {
  KernelSet k;
  k.isa = isa;
  k.name = isa_name(isa);
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: isa::add_avx2_kernels(k); break;
    case Isa::kAvx512:  // implies AVX2: start from that set, override what AVX-512 does better
      isa::add_avx2_kernels(k);
      isa::add_avx512_kernels(k);
      break;
#endif
#if defined(__aarch64__)
    case Isa::kNeon:  // one ISA name; sdot replaces vmull in the quantized dots where present
      isa::add_neon_kernels(k);
      if (isa::cpu_has_neon_dotprod()) isa::add_neon_dotprod_kernels(k);
      break;
#endif
    default: break;
  }
  return k;
}

std::string available_list() {
  std::string s;
  for (Isa isa : available_isas()) {
    if (!s.empty()) s += ", ";
    s += isa_name(isa);
  }
  return s;
}

Isa choose_isa() {
  const char* forced = std::getenv("SLM_ISA");
  if (forced == nullptr || *forced == '\0') return available_isas().back();
  for (Isa isa : kAllIsas) {
    if (isa_name(isa) != forced) continue;
    if (!cpu_has(isa)) {
      throw UnsupportedError("SLM_ISA=" + std::string(forced) +
                             ": this CPU or build cannot run it (available: " + available_list() +
                             ")");
    }
    return isa;
  }
  throw InvalidArgumentError("SLM_ISA=" + std::string(forced) +
                             ": unknown ISA (expected scalar, avx2, avx512 or neon)");
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "scalar";
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas) {
    if (cpu_has(isa)) out.push_back(isa);
  }
  return out;
}

const KernelSet& kernel_set(Isa isa) {
  // One immutable set per ISA, built on first use (static locals: thread-safe).
  switch (isa) {
    case Isa::kAvx2: {
      static const KernelSet k = build_set(Isa::kAvx2);
      return k;
    }
    case Isa::kAvx512: {
      static const KernelSet k = build_set(Isa::kAvx512);
      return k;
    }
    case Isa::kNeon: {
      static const KernelSet k = build_set(Isa::kNeon);
      return k;
    }
    default: {
      static const KernelSet k = build_set(Isa::kScalar);
      return k;
    }
  }
}

const KernelSet& active_kernels() {
  // If choose_isa() throws, the static stays uninitialized and the next call tries again.
  static const KernelSet& active = kernel_set(choose_isa());
  return active;
}

std::string_view active_isa_name() { return active_kernels().name; }

}  // namespace slm
