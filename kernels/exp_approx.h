// The e^x approximation every SIMD set's softmax, sigmoid and attention use (exp_ps in
// kernels/x86/avx2_vec.h and avx512_ops.cpp, exp4 in kernels/arm/neon_vec.h): the same constants
// and the same operations in each, so the sets agree on it.
//
// x is clamped to [kMin, kMax] (e^-87 ≈ 1.6e-38 stands in for anything smaller, which no softmax
// or sigmoid here can tell from 0). x = n·ln2 + r with n = round(x · kLog2e) and |r| ≤ ln2/2,
// r = x − n·kLn2High − n·kLn2Low (ln2 split in two, so n·ln2 is exact to float precision). e^r is
// its degree-7 Taylor polynomial by Horner's rule, from kTaylor[0] = 1/7! down to 1 (truncation
// error ≤ 0.347⁸/8! ≈ 5e-9), then scaled by 2^n (n in [-126, 127]: a normal float). Max relative
// error ≈ 3e-7, from rounding in Horner's rule.
#pragma once

namespace slm::exp_approx {

constexpr float kMin = -87.0f, kMax = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
constexpr float kTaylor[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                             1.0f / 6,    0.5f,       1.0f,       1.0f};

}  // namespace slm::exp_approx
