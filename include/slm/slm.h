// The public API of slm: include this one header.
#pragma once

#include "slm/error.h"      // IWYU pragma: export
#include "slm/inspect.h"    // IWYU pragma: export
#include "slm/model.h"      // IWYU pragma: export
#include "slm/sampler.h"    // IWYU pragma: export
#include "slm/tokenizer.h"  // IWYU pragma: export

namespace slm {
const char* version();
}
