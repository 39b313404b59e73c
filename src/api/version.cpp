#include "slm/slm.h"

#include "kernels/dispatch.h"

namespace slm {
const char* version() { return "0.1.0"; }
std::string kernel_isa() { return std::string(active_isa_name()); }
}  // namespace slm
