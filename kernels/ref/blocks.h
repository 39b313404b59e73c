// The remaining ggml block layouts (Q4_0, Q8_0 and Q8_K are in quant.h) and the small decoders
// of their packed scale fields, shared by the reference and the SIMD kernels. Byte for byte the
// layouts of ggml's ggml-common.h; fp16 fields are raw IEEE half bit patterns.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/ref/quant.h"

namespace slm {

constexpr size_t kQK4_1 = 32;
constexpr size_t kQK5_0 = 32;
constexpr size_t kQK5_1 = 32;
constexpr size_t kQK8_1 = 32;
constexpr size_t kKScaleBytes = 12;  // packed 6-bit scales of Q4_K / Q5_K, 4+2-bit of Q3_K

// x = q * d + m.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];  // element j low nibble, element j+16 high nibble
};
// x = (q - 16) * d, q = nibble | (bit j of qh) << 4.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // little-endian u32: bit j is the 5th bit of element j
  uint8_t qs[kQK5_0 / 2];
};
// x = q * d + m, q 5 bits as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
// Activation block paired with Q4_1 / Q5_1: x = q * d; s = fp16(d * sum(q)) feeds the min term.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_1];
};

// Super-block of 256 = 16 groups of 16. x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4),
// q 2 bits. qs[32*h + l] holds elements 128h + l + 32k in bits 2k..2k+1 (k = 0..3).
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
// 16 groups of 16. x = d * (s[g] - 32) * (q - 4 * !hbit), q 2 bits laid out as Q2_K; hmask bit k
// of byte l is the high bit of element 32k + l. The 6-bit s[g] are packed in 12 bytes (see
// q3k_unpack_scales).
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};
// 8 groups of 32. x = d * sc[g] * q - dmin * m[g], q a nibble; sc/m 6 bits packed in 12 bytes
// (k4_scale_min). qs[32*h + l]: low nibble element 64h + l, high nibble element 64h + 32 + l.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a 5th bit: bit (2h) / (2h+1) of qh[l] is the high bit of element 64h + l /
// 64h + 32 + l.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 groups of 16. x = d * scales[g] * (q - 32), q 6 bits. Per half h (128 elements), for
// l < 32: ql[64h + l] low/high nibble = elements 128h + l / 128h + l + 64, ql[64h + 32 + l]
// low/high = elements 128h + l + 32 / 128h + l + 96; qh[32h + l] bits 2k..2k+1 = high bits of
// element 128h + l + 32k.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

static_assert(sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24 &&
              sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// Scale and min (6 bits each) of group j (0..7) of a Q4_K / Q5_K block: groups 0-3 sit in the low
// 6 bits of bytes j and j+4; groups 4-7 take a nibble of byte j+4 and the top 2 bits of bytes j-4
// (scale) and j (min).
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K / Q5_K group scales and mins (6 bits) into the 12-byte layout k4_scale_min reads.
inline void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((ls[j] >> 4) << 6));
      s[j] = static_cast<uint8_t>(s[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// The 16 signed group scales (s - 32, in -32..31) of a Q3_K block: the low nibble of group j is
// in byte j (j < 8, low nibble) or byte j-8 (high nibble); its top 2 bits are bits 2*(j/4) of
// byte 8 + j%4.
inline void q3k_unpack_scales(const uint8_t* packed, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

inline uint32_t load_u32_le(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);  // every target slm builds for is little-endian, like GGUF
  return v;
}

}  // namespace slm
