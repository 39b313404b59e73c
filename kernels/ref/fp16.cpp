// IEEE binary16 and bfloat16 <-> binary32, done on the bit patterns so the result does not depend
// on the compiler or the FPU rounding mode. Narrowing rounds to nearest, ties to even; NaN stays
// NaN (quiet bit forced, sign and the top payload bits kept), overflow gives Inf, and binary16
// subnormals are produced and read exactly.
#include <bit>
#include <cstdint>

#include "kernels/ref/quant.h"

namespace slm {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // Inf / NaN
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in binary32 (a power-of-two scale of a 10-bit int).
  const float magnitude = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) {  // NaN: keep the top payload bits, force quiet so it cannot become Inf
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  }
  // 65520 = 0x477ff000 is halfway between the largest half (65504) and 2^16; the tie goes to the
  // even neighbour, which is the overflow, so everything from there up is Inf.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (a >= 0x38800000u) {  // normal half (>= 2^-14): rebias, then round away 13 mantissa bits
    const uint32_t rebased = a - (112u << 23);
    uint32_t h = rebased >> 13;
    const uint32_t rem = rebased & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
    return static_cast<uint16_t>(sign | h);
  }
  // Subnormal half: value / 2^-24 = m24 * 2^(e - 126) with m24 the 24-bit significand.
  const uint32_t e = a >> 23;
  const uint32_t shift = 126u - e;  // >= 14 here
  if (shift > 24u) return sign;     // below half of the smallest subnormal (ties at 2^-25 go to 0)
  const uint32_t m24 = (a & 0x7fffffu) | (e ? 0x800000u : 0u);
  uint32_t h = m24 >> shift;
  const uint32_t rem = m24 & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (h & 1u))) ++h;  // may round up to the smallest normal: fine
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet
  // Round to nearest even on the low 16 bits; a carry into the exponent (up to Inf) is correct.
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace slm
