#include "slm/slm.h"

namespace slm {
const char* version() { return "0.1.0"; }
}  // namespace slm
