#include "src/model/architecture.h"

namespace slm {
namespace {

constexpr Architecture kArchitectures[] = {
    {"llama", RopeLayout::kInterleaved, false, false},  // llama.cpp's "normal" RoPE
    {"qwen2", RopeLayout::kHalfSplit, true, false},     // llama.cpp's NEOX RoPE
    {"qwen3", RopeLayout::kHalfSplit, false, true},
    {"qwen2moe", RopeLayout::kHalfSplit, true, false, /*moe_weights_norm=*/false,
     /*moe_shared_expert=*/true},
    {"qwen3moe", RopeLayout::kHalfSplit, false, true},
};

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const Architecture& a : kArchitectures) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string supported_architectures() {
  std::string out;
  for (const Architecture& a : kArchitectures) {
    out += (out.empty() ? "" : ", ") + std::string(a.name);
  }
  return out;
}

}  // namespace slm
