// The intrinsics, for the translation units compiled with the AVX-512 flags (avx512*.cpp), which
// include this first. GCC 12's AVX-512 headers build many intrinsics on _mm512_undefined_*()
// values, which its uninitialized-use analysis then flags inside the headers (a compiler bug,
// not ours): those two warnings are off for the rest of the including file.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
