// The public API of slm: include this one header.
#pragma once

#include "slm/batch.h"      // IWYU pragma: export
#include "slm/chat.h"       // IWYU pragma: export
#include "slm/convert.h"    // IWYU pragma: export
#include "slm/error.h"      // IWYU pragma: export
#include "slm/inspect.h"    // IWYU pragma: export
#include "slm/model.h"      // IWYU pragma: export
#include "slm/quantize.h"   // IWYU pragma: export
#include "slm/sampler.h"    // IWYU pragma: export
#include "slm/synth.h"      // IWYU pragma: export
#include "slm/tokenizer.h"  // IWYU pragma: export

#include <string>

namespace slm {
const char* version();
// The kernel set in use ("scalar", "avx2", "avx512", "neon"): the best the CPU runs, or the one
// SLM_ISA names. Throws InvalidArgumentError / UnsupportedError for a bad SLM_ISA.
std::string kernel_isa();
}  // namespace slm
